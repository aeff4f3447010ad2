package main
import (
 _ "github.com/cometbft/cometbft/node"
 _ "github.com/cosmos/iavl"
 _ "github.com/cosmos/cosmos-db"
 _ "github.com/spf13/cobra"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "google.golang.org/protobuf/proto"
 _ "github.com/BurntSushi/toml"
 _ "golang.org/x/crypto/scrypt"
)
func main(){}
