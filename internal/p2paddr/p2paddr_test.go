package p2paddr

import (
	"errors"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/protocol"
)

const id = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"

func TestParseAddrInfo(t *testing.T) {
	ai, err := ParseAddrInfo("/ip4/127.0.0.1/tcp/4001/p2p/" + id)
	if err != nil || ai.ID.String() != id || len(ai.Addrs) != 1 {
		t.Fatalf("%+v, %v", ai, err)
	}
	for _, bad := range []string{"", "not a multiaddr", "/ip4/127.0.0.1/tcp/4001", "/p2p/bob"} {
		if _, err := ParseAddrInfo(bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestRelayed(t *testing.T) {
	circuit := ma.StringCast("/ip4/1.2.3.4/tcp/4001/p2p/" + id + "/p2p-circuit")
	direct := ma.StringCast("/ip4/1.2.3.4/tcp/4001")
	if !IsRelayed(circuit) || IsRelayed(direct) {
		t.Fatal("IsRelayed")
	}
	if RelayOf(circuit) != id || RelayOf(direct) != "" {
		t.Fatalf("RelayOf: %q", RelayOf(circuit))
	}
	if RelayedOnly(nil) {
		t.Fatal("no connection is not relayed only")
	}
}
