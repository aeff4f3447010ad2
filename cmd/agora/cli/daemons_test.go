package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProviderConfigFile: values in provider.toml apply (lower or higher than
// the defaults), and flags given on the command line override them.
func TestProviderConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "provider.toml")
	os.WriteFile(path, []byte("queue = 4\nconcurrency = 3\nprice_input_per_1k = 7\nlisten = \"127.0.0.1:9999\"\ndrain_timeout = \"3s\"\n"), 0o644)
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
	if c.Queue != 4 || c.Concurrency != 5 || c.PriceInput != 7 || c.Listen != "127.0.0.1:9999" || c.DrainTimeout != 3*time.Second {
		t.Fatalf("merged config %+v", c)
	}
}

// TestProviderJobsConfig: provider.toml's [jobs] turns compute jobs on and
// sets the executor's limits; a flag given on the command line wins.
func TestProviderJobsConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "provider.toml")
	os.WriteFile(path, []byte("[jobs]\nenabled = true\nprice_per_mgas = 900\nmax_concurrent = 3\nmax_memory_pages = 512\nmin_deadline_blocks = 50\n"), 0o644)
	start, _, _ := providerCmd(&globals{home: dir}).Find([]string{"start"})
	if err := start.ParseFlags([]string{"--config", path, "--job-price", "1500"}); err != nil {
		t.Fatal(err)
	}
	var fc ProviderConfig
	if err := loadTOML(path, "", &fc); err != nil {
		t.Fatal(err)
	}
	c := ProviderConfig{Jobs: JobsConfig{Price: 1500, Concurrency: 1, MaxPages: 4096, Queue: 4}} // defaults and the flag
	mergeConfig(start.Flags(), &c, fc)
	if want := (JobsConfig{Enabled: true, Price: 1500, Concurrency: 3, MaxPages: 512, Queue: 4, MinBlocks: 50}); c.Jobs != want {
		t.Fatalf("merged [jobs] %+v, want %+v", c.Jobs, want)
	}
}

// TestProviderStorageConfig: provider.toml's [storage] turns storage deals
// on and sets the storer's policy; a flag given on the command line wins.
func TestProviderStorageConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "provider.toml")
	os.WriteFile(path, []byte("[storage]\nenabled = true\nmax_total_bytes = 1000000\nmax_collateral = 7\nmin_price = 3\n"), 0o644)
	start, _, _ := providerCmd(&globals{home: dir}).Find([]string{"start"})
	if err := start.ParseFlags([]string{"--config", path, "--storage-min-price", "9"}); err != nil {
		t.Fatal(err)
	}
	var fc ProviderConfig
	if err := loadTOML(path, "", &fc); err != nil {
		t.Fatal(err)
	}
	c := ProviderConfig{Storage: StorageConfig{MaxTotal: 1 << 30, MaxCollateral: 100_000_000, MinPrice: 9}} // defaults and the flag
	mergeConfig(start.Flags(), &c, fc)
	if want := (StorageConfig{Enabled: true, MaxTotal: 1_000_000, MaxCollateral: 7, MinPrice: 9}); c.Storage != want {
		t.Fatalf("merged [storage] %+v, want %+v", c.Storage, want)
	}
}

// TestModelFiles: a directory stands for its .gguf files in name order, a
// file for itself; a missing path or a directory without models is an error.
func TestModelFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.gguf", "a.gguf", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	single := filepath.Join(t.TempDir(), "c.gguf")
	os.WriteFile(single, []byte("x"), 0o644)
	got, err := modelFiles([]string{dir, single})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf"), single}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := modelFiles([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "has no .gguf file") {
		t.Fatalf("an empty directory: %v", err)
	}
	if _, err := modelFiles([]string{filepath.Join(dir, "missing.gguf")}); err == nil || !strings.Contains(err.Error(), "missing.gguf") {
		t.Fatalf("a missing file: %v", err)
	}
}
