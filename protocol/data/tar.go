// Package data holds the off-chain formats of the data market (chain/data):
// the deterministic tar a dataset directory is published as, and (see the
// other files) sealed outputs and the access header of gated reads.
package data

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Member is one file of a dataset directory, as its tar names it.
type Member struct {
	Name string // slash-separated path relative to the directory
	Path string // on disk
	Size int64
}

// Members lists the regular files under dir in the order the dataset tar
// holds them: sorted by Name, byte-wise. A symlink, device or other
// non-regular file is refused (its bytes would not be the directory's own),
// and so is a directory without files.
func Members(dir string) ([]Member, error) {
	var out []Member
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (a dataset holds regular files only)", name)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, Member{Name: name, Path: path, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dataset %s: no files", dir)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Header is the ustar header of a member: mode 0644, uid/gid 0, no user
// or group names, mtime 0, so the tar depends on names and bytes only.
func Header(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
}

// WriteTar writes the deterministic tar (ustar) of members to w: one
// header and the bytes of each, in order, then the two zero blocks. A file
// whose size changed since it was listed is refused.
func WriteTar(w io.Writer, members []Member) error {
	tw := tar.NewWriter(w)
	for _, m := range members {
		if err := tw.WriteHeader(Header(m.Name, m.Size)); err != nil {
			return fmt.Errorf("tar %s: %w", m.Name, err)
		}
		f, err := os.Open(m.Path)
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(f, m.Size+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("tar %s: %w", m.Name, err)
		}
		if n != m.Size {
			return fmt.Errorf("tar %s: the file changed while packing (%d bytes, listed with %d)", m.Name, n, m.Size)
		}
	}
	return tw.Close()
}

// TarSize is the size of the tar WriteTar makes of members: per member a
// 512-byte header and its bytes padded to 512, then 1,024 zero bytes
// (ustar names longer than 100 bytes go to the header's prefix field, so
// the size does not depend on names).
func TarSize(members []Member) int64 {
	var n int64
	for _, m := range members {
		n += 512 + (m.Size+511)/512*512
	}
	return n + 1024
}

// TarDir writes the deterministic tar of the regular files under dir.
func TarDir(w io.Writer, dir string) error {
	ms, err := Members(dir)
	if err != nil {
		return err
	}
	return WriteTar(w, ms)
}
