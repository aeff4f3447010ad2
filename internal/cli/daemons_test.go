package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestProviderConfigFile: values in provider.toml apply (lower or higher than
// the defaults), and flags given on the command line override them.
func TestProviderConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "provider.toml")
	os.WriteFile(path, []byte("queue = 4\nconcurrency = 3\nprice_input_per_1k = 7\nlisten = \"127.0.0.1:9999\"\n"), 0o644)
	g := &globals{home: dir}
	cmd := providerCmd(g)
	start, _, _ := cmd.Find([]string{"start"})
	if err := start.ParseFlags([]string{"--config", path, "--concurrency", "5"}); err != nil {
		t.Fatal(err)
	}
	c := ProviderConfig{Concurrency: 1, Queue: 16, Listen: "127.0.0.1:8090"}
	var fc ProviderConfig
	if err := loadTOML(path, "", &fc); err != nil {
		t.Fatal(err)
	}
	c.Concurrency = 5 // what the parsed flag set
	mergeConfig(start.Flags(), &c, fc)
	if c.Queue != 4 || c.Concurrency != 5 || c.PriceInput != 7 || c.Listen != "127.0.0.1:9999" {
		t.Fatalf("merged config %+v", c)
	}
}
