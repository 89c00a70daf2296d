package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// KeyFile is the node's identity key inside its repo: a libp2p-marshalled
// Ed25519 private key, mode 0600.
const KeyFile = "identity.key"

// ErrKeyPermissions is returned (wrapped) when the key file is readable or
// writable by group or others.
var ErrKeyPermissions = errors.New("identity key file is accessible by group or others")

// LoadOrCreateKey loads the identity key in dir, or creates one (mode 0600)
// when there is none. It refuses a key file that group or others can access.
func LoadOrCreateKey(dir string) (crypto.PrivKey, bool, error) {
	path := filepath.Join(dir, KeyFile)
	k, err := LoadKey(dir)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("node: create repo %s: %w", dir, err)
	}
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("node: generate key: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("node: marshal key: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("node: write key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("node: write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("node: write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("node: write key: %w", err)
	}
	// Link, not rename: if another process created a key meanwhile, keep its.
	if err := os.Link(tmp, path); err != nil {
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			k, err := LoadKey(dir)
			return k, false, err
		}
		return nil, false, fmt.Errorf("node: write key: %w", err)
	}
	os.Remove(tmp)
	syncDir(dir)
	return priv, true, nil
}

// LoadKey reads the identity key in dir. A missing file gives an error
// wrapping fs.ErrNotExist.
func LoadKey(dir string) (crypto.PrivKey, error) {
	path := filepath.Join(dir, KeyFile)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("node: identity key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("node: %w: %s has mode %#o; it must be readable by its owner only: run chmod 600 %s", ErrKeyPermissions, path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: identity key: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("node: identity key %s is corrupt: %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("node: identity key %s is %s, MESH needs Ed25519", path, k.Type())
	}
	return k, nil
}

// edKey converts a libp2p Ed25519 key to the standard library's form.
func edKey(k crypto.PrivKey) (ed25519.PrivateKey, error) {
	raw, err := k.Raw()
	if err != nil {
		return nil, err
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("node: identity key is not Ed25519")
	}
	return ed25519.PrivateKey(raw), nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
