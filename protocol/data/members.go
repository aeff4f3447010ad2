package data

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// File is one file a compute-to-data job sees under /data.
type File struct {
	Name string // slash-separated, relative
	Data []byte
}

// MaxFiles bounds a dataset tar's members.
const MaxFiles = 1 << 16

// Files lists what a job on a dataset blob sees under /data: a tar's
// regular files (by their names; directory entries skipped), or, for a blob
// that is not a tar, the blob itself as one file named after the dataset
// (FileName). The executor and every auditor call it on the same bytes, so
// the job's view is the same everywhere.
func Files(b []byte, datasetName string) ([]File, error) {
	if !looksTar(b) {
		return []File{{Name: FileName(datasetName), Data: b}}, nil
	}
	tr := tar.NewReader(bytes.NewReader(b))
	var out []File
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dataset tar: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("dataset tar: member %q is not a regular file (type %q)", h.Name, h.Typeflag)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if !fs.ValidPath(name) || name == "." {
			return nil, fmt.Errorf("dataset tar: member name %q is not a relative path", h.Name)
		}
		if seen[name] {
			return nil, fmt.Errorf("dataset tar: member %q twice", name)
		}
		seen[name] = true
		if len(out) >= MaxFiles {
			return nil, fmt.Errorf("dataset tar: over %d members", MaxFiles)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("dataset tar: member %q: %w", name, err)
		}
		out = append(out, File{Name: name, Data: data})
	}
}

// looksTar reports whether b is a ustar or GNU tar: its first header
// block's magic and checksum (an empty tar, two zero blocks, counts).
func looksTar(b []byte) bool {
	if len(b) < 1024 || len(b)%512 != 0 {
		return false
	}
	if bytes.Equal(b[:1024], make([]byte, 1024)) {
		return true
	}
	if m := string(b[257:263]); m != "ustar\x00" && m != "ustar " {
		return false
	}
	_, err := tar.NewReader(bytes.NewReader(b)).Next()
	return err == nil
}

// FileName is the /data name of a dataset that is a single file: its name
// when that is a plain file name, else "data".
func FileName(datasetName string) string {
	if datasetName == "" || strings.ContainsAny(datasetName, "/\\") || !fs.ValidPath(datasetName) {
		return "data"
	}
	return datasetName
}

// The host's HTTP paths for datasets and compute-to-data runs (the blob
// paths of protocol/blob never serve either):
//
//   - PUT DataPath(id): the owner's upload of the dataset's bytes
//     (AuthHeader by the owner; the body must hash to the dataset's root).
//   - GET DataPath(id) (Range requests work), GET DataManifestPath(id): the
//     bytes and their manifest, to a grant's buyer, the owner or an auditor.
//   - GET SealedPath(lease): a compute-to-data run's sealed results, to the
//     order's owner.
//   - protocol/jobs StatePath of a compute-to-data lease: to the dataset's
//     auditors only.
const (
	DataRoute         = "/v1/data/{dataset}"
	DataManifestRoute = "GET /v1/data/{dataset}/manifest"
	SealedRoute       = "GET /v1/jobs/leases/{lease}/sealed"
)

// DataPath is the path of a dataset's bytes on its host.
func DataPath(dataset uint64) string { return fmt.Sprintf("/v1/data/%d", dataset) }

// DataManifestPath is the path of a dataset's manifest on its host.
func DataManifestPath(dataset uint64) string { return DataPath(dataset) + "/manifest" }

// SealedPath is the path of a compute-to-data lease's sealed results.
func SealedPath(lease uint64) string { return fmt.Sprintf("/v1/jobs/leases/%d/sealed", lease) }
