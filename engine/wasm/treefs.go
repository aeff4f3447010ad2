package wasm

import (
	"io/fs"
	"path"
	"slices"
	"strings"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// treeFS is a read-only tree of files in memory, mounted at /data: a
// compute-to-data job's dataset (its tar members by path). Like memFS,
// every stat is a function of the files alone and open files are counted
// (none may stay open across steps). Directories are implied by the
// files' paths and list their entries by name.
type treeFS struct {
	experimentalsys.UnimplementedFS
	files map[string][]byte
	dirs  map[string][]experimentalsys.Dirent // "" is the root
	open  int
}

// dataPathError says why a /data file name is refused, or "".
func dataPathError(name string) string {
	if name == "" || !fs.ValidPath(name) || name == "." {
		return "want a relative slash-separated path without . or .. elements"
	}
	return ""
}

func newTreeFS(blobs []Blob) *treeFS {
	t := &treeFS{files: map[string][]byte{}, dirs: map[string][]experimentalsys.Dirent{"": nil}}
	for _, b := range blobs {
		t.files[b.Name] = b.Data
		name := b.Name
		typ := fs.FileMode(0)
		for {
			dir, base := path.Split(name)
			dir = strings.TrimSuffix(dir, "/")
			_, seen := t.dirs[dir]
			if !slices.ContainsFunc(t.dirs[dir], func(d experimentalsys.Dirent) bool { return d.Name == base }) {
				t.dirs[dir] = append(t.dirs[dir], experimentalsys.Dirent{Name: base, Type: typ})
			}
			if seen || dir == "" {
				break
			}
			name, typ = dir, fs.ModeDir
		}
	}
	for d := range t.dirs {
		slices.SortFunc(t.dirs[d], func(a, b experimentalsys.Dirent) int { return strings.Compare(a.Name, b.Name) })
	}
	return t
}

// treeName maps a path under the mount to a key: "" for the root.
func treeName(p string) (string, experimentalsys.Errno) {
	p = path.Clean("/" + p)
	if p == "/" {
		return "", 0
	}
	return p[1:], 0
}

func (t *treeFS) stat(name string) (sys.Stat_t, experimentalsys.Errno) {
	if _, ok := t.dirs[name]; ok {
		return sys.Stat_t{Mode: fs.ModeDir | 0o555, Nlink: 1, Atim: epochNanos, Mtim: epochNanos, Ctim: epochNanos}, 0
	}
	d, ok := t.files[name]
	if !ok {
		return sys.Stat_t{}, experimentalsys.ENOENT
	}
	return sys.Stat_t{Mode: 0o444, Nlink: 1, Size: int64(len(d)), Atim: epochNanos, Mtim: epochNanos, Ctim: epochNanos}, 0
}

func (t *treeFS) OpenFile(p string, flag experimentalsys.Oflag, _ fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	name, errno := treeName(p)
	if errno != 0 {
		return nil, errno
	}
	acc := flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY)
	if acc != experimentalsys.O_RDONLY || flag&(experimentalsys.O_CREAT|experimentalsys.O_TRUNC|experimentalsys.O_APPEND) != 0 {
		return nil, experimentalsys.EROFS
	}
	if _, ok := t.dirs[name]; ok {
		return &treeFile{fs: t, name: name, dir: true}, 0
	}
	d, ok := t.files[name]
	if !ok {
		return nil, experimentalsys.ENOENT
	}
	if flag&experimentalsys.O_DIRECTORY != 0 {
		return nil, experimentalsys.ENOTDIR
	}
	t.open++
	return &treeFile{fs: t, name: name, data: d}, 0
}

func (t *treeFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	name, errno := treeName(p)
	if errno != 0 {
		return sys.Stat_t{}, errno
	}
	return t.stat(name)
}

func (t *treeFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) { return t.Stat(p) }

func (t *treeFS) Unlink(string) experimentalsys.Errno             { return experimentalsys.EROFS }
func (t *treeFS) Rename(string, string) experimentalsys.Errno     { return experimentalsys.EROFS }
func (t *treeFS) Rmdir(string) experimentalsys.Errno              { return experimentalsys.EROFS }
func (t *treeFS) Mkdir(string, fs.FileMode) experimentalsys.Errno { return experimentalsys.EROFS }

// treeFile is an open file or directory of a treeFS.
type treeFile struct {
	experimentalsys.UnimplementedFile
	fs      *treeFS
	name    string
	data    []byte
	dir     bool
	pos     int64
	dirDone bool
	closed  bool
}

func (f *treeFile) IsDir() (bool, experimentalsys.Errno) { return f.dir, 0 }

func (f *treeFile) Stat() (sys.Stat_t, experimentalsys.Errno) { return f.fs.stat(f.name) }

func (f *treeFile) Read(buf []byte) (int, experimentalsys.Errno) {
	n, errno := f.Pread(buf, f.pos)
	f.pos += int64(n)
	return n, errno
}

func (f *treeFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	switch {
	case f.dir:
		return 0, experimentalsys.EISDIR
	case off < 0:
		return 0, experimentalsys.EINVAL
	case off >= int64(len(f.data)):
		return 0, 0
	}
	return copy(buf, f.data[off:]), 0
}

func (f *treeFile) Readdir(int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	if !f.dir {
		return nil, experimentalsys.ENOTDIR
	}
	if f.dirDone {
		return nil, 0
	}
	f.dirDone = true
	return slices.Clone(f.fs.dirs[f.name]), 0
}

func (f *treeFile) Close() experimentalsys.Errno {
	if !f.closed && !f.dir {
		f.fs.open--
	}
	f.closed = true
	return 0
}
