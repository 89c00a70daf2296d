package store

import (
	"fmt"
)

// DefaultDiskReserve is the free space below which the store refuses
// writes that add data (Options.DiskReserve): room for pebble's write-ahead
// log, memtable flushes and compactions, and the index, so that a full disk
// never reaches pebble, whose failed commit ends the process.
const DefaultDiskReserve = 64 << 20

// diskGuard refuses writes while the disk of a directory has less than
// reserve bytes free. It asks the file system (statfs) on every check: a
// system call of a microsecond or two, cheaper than the write it guards,
// and writes resume as soon as space returns.
type diskGuard struct {
	dir     string
	reserve uint64
}

// check returns an error wrapping ErrInsufficientStorage if the disk has
// less than the reserve free. A guard without a directory (a memory store)
// or whose free space cannot be read allows everything.
func (g *diskGuard) check() error {
	if g == nil || g.dir == "" || g.reserve == 0 {
		return nil
	}
	free, ok := freeSpace(g.dir)
	if !ok || free >= g.reserve {
		return nil
	}
	return fmt.Errorf("%w: %s free on the disk of %s, the store keeps %s in reserve; free some space and writes resume by themselves (reads go on meanwhile)",
		ErrInsufficientStorage, humanBytes(free), g.dir, humanBytes(g.reserve))
}

// humanBytes says n bytes for a person: "41.2 MiB".
func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
