package client

import (
	"github.com/agoranet/agora/chain/data"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/models"
	"github.com/agoranet/agora/chain/storage"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
)

// Msgs is the registry the client signs with: the chain's own messages and
// the module messages of the chain's default modules (the job, data and
// storage markets', carried in module_msg), so Submit, Send and SignWithMinFee take either.
var Msgs = func() *types.MsgRegistry {
	r, err := types.Msgs().With(append(append(append(append(jobs.Msgs(), data.Msgs()...), storage.Msgs()...), models.Msgs()...), zk.Msgs()...)...)
	if err != nil {
		panic(err) // the declarations are the chain's own: a programming error
	}
	return r
}()
