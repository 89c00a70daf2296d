package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/protocol"
)

// policyFlags are the flags of a key policy (mesh publish --encrypt,
// mesh keys policy).
type policyFlags struct {
	access    string
	allow     []string
	minTrust  float64
	escrow    []string
	threshold int
	noEscrow  bool
	expires   time.Duration
}

func (p *policyFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&p.access, "access", "", "who may have the key: trusted (default: a trust path from this node), explicit (--allow) or public")
	f.StringSliceVar(&p.allow, "allow", nil, "with --access explicit: a node ID that may read (repeatable or comma-separated)")
	f.Float64Var(&p.minTrust, "min-trust", 0, "with --access trusted: the lowest trust score a reader needs (0..1; 1 direct, halved per hop)")
	f.StringSliceVar(&p.escrow, "escrow", nil, "escrow nodes (trusted fully) holding k-of-n shares of the key (comma-separated)")
	f.IntVar(&p.threshold, "threshold", 0, "with --escrow: the shares it takes to rebuild the key (default: a majority)")
	f.DurationVar(&p.expires, "expires", 0, "end the policy after this long: nobody is given the key after it (e.g. 720h)")
}

// changed names the first policy flag set on c, "" if none.
func (p *policyFlags) changed(c *cobra.Command) string {
	for _, name := range []string{"access", "allow", "min-trust", "escrow", "threshold", "no-escrow", "expires"} {
		if f := c.Flags().Lookup(name); f != nil && f.Changed {
			return name
		}
	}
	return ""
}

// options is base with the flags that were set applied, checked for what
// the CLI can tell (the node checks the rest).
func (p *policyFlags) options(base api.PolicyOptions) (api.PolicyOptions, error) {
	o := base
	if p.access != "" {
		switch p.access {
		case protocol.AccessPublic, protocol.AccessTrusted, protocol.AccessExplicit:
		default:
			return o, usagef("--access %q: want public, trusted or explicit", p.access)
		}
		if p.access != o.Access {
			o.AllowedNodes, o.MinTrustScore = nil, 0
		}
		o.Access = p.access
	}
	if len(p.allow) > 0 {
		if o.Access == "" {
			o.Access = protocol.AccessExplicit
		}
		o.AllowedNodes = p.allow
	}
	if p.minTrust != 0 {
		if p.minTrust < 0 || p.minTrust > 1 {
			return o, usagef("--min-trust %g: want 0 to 1", p.minTrust)
		}
		o.MinTrustScore = p.minTrust
	}
	if len(p.escrow) > 0 {
		o.EscrowNodes, o.Threshold = p.escrow, p.threshold
	} else if p.threshold != 0 {
		if len(o.EscrowNodes) == 0 {
			return o, usagef("--threshold applies to --escrow")
		}
		o.Threshold = p.threshold
	}
	if p.noEscrow {
		o.EscrowNodes, o.Threshold = nil, 0
	}
	if p.expires < 0 {
		return o, usagef("--expires must be positive")
	}
	if p.expires > 0 {
		o.ExpiresAt = time.Now().Add(p.expires).UnixMilli()
	}
	if o.Access == protocol.AccessExplicit && len(o.AllowedNodes) == 0 {
		return o, usagef("--access explicit needs the readers: --allow NODE_ID")
	}
	return o, nil
}

func keysCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "keys",
		Short: "The keys of encrypted lessons: list them, change a policy, rotate a key",
		Long: `Encrypted lessons (mesh publish --encrypt) are readable only with their key, which stays
on the author's node and is given to the readers its policy admits.

  mesh keys list              the keys this node holds (its own, escrow shares, those a
                              reader holds in memory) and those it knows revoked
  mesh keys policy ID [...]   show, or change (--access, --allow, --min-trust, --escrow,
                              --threshold, --no-escrow, --expires), the policy of the key
                              of record ID; readers that hold the key keep it until it
                              expires: rotate it to cut them off
  mesh keys rotate ID         re-encrypt record ID under a new key, republish it, and
                              revoke the old key`,
		Args: args(cobra.NoArgs),
	}
	c.AddCommand(keysListCmd(g), keysPolicyCmd(g), keysRotateCmd(g))
	return c
}

func keysListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the keys this node holds and those it knows revoked",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) ([]api.KeyInfo, error) {
				l, err := b.KeyList(c.Context())
				if l == nil {
					l = []api.KeyInfo{}
				}
				return l, err
			}, func(list []api.KeyInfo) {
				for _, k := range list {
					state := k.Access + " access"
					switch {
					case k.Revoked:
						state = "REVOKED (" + k.RevokeReason + ") " + time.UnixMilli(k.RevokedAt).UTC().Format(time.RFC3339)
					case k.Role == api.KeyRoleReader:
						state = "in memory until " + time.UnixMilli(k.CachedUntil).UTC().Format(time.RFC3339)
					}
					g.printf("%-7s %-24s %s@%s  %s\n", k.Role, k.KeyID, k.LessonID, shortID(k.NodeID), state)
				}
				g.printf("%s\n", plural(len(list), "key", "keys"))
			})
		},
	}
}

func keysPolicyCmd(g *globals) *cobra.Command {
	var p policyFlags
	c := &cobra.Command{
		Use:   "policy ID",
		Short: "Show or change the policy of the key of a record published encrypted",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return show(g, c, func(b api.API) (*api.KeyInfo, error) {
				cur, err := currentKey(c, b, a[0])
				if err != nil || p.changed(c) == "" {
					return cur, err
				}
				base := api.PolicyOptions{Access: cur.Access, AllowedNodes: cur.AllowedNodes, MinTrustScore: cur.MinTrustScore,
					EscrowNodes: cur.EscrowNodes, Threshold: cur.Threshold, ExpiresAt: cur.ExpiresAt}
				opts, err := p.options(base)
				if err != nil {
					return nil, err
				}
				return b.KeyPolicySet(c.Context(), a[0], opts)
			}, func(k *api.KeyInfo) { printKeyInfo(g, *k) })
		},
	}
	p.register(c)
	c.Flags().BoolVar(&p.noEscrow, "no-escrow", false, "drop the escrow (its nodes delete their shares; rotate to be sure)")
	return c
}

// currentKey is the key of record id's encrypted publication.
func currentKey(c *cobra.Command, b api.API, id string) (*api.KeyInfo, error) {
	el, err := b.ExportEncrypted(c.Context(), id)
	if err != nil {
		return nil, err
	}
	list, err := b.KeyList(c.Context())
	if err != nil {
		return nil, err
	}
	for _, k := range list {
		if k.KeyID == el.Encryption.KeyID && k.Role == api.KeyRoleAuthor && !k.Revoked {
			return &k, nil
		}
	}
	return nil, fmt.Errorf("%s: %w: this node holds no key %s", id, protocol.ErrNotFound, el.Encryption.KeyID)
}

func keysRotateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate ID",
		Short: "Re-encrypt a record under a new key, republish it, and revoke the old key",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return show(g, c, func(b api.API) (*api.EncryptedPublication, error) {
				return b.KeyRotate(c.Context(), a[0])
			}, func(p *api.EncryptedPublication) {
				g.printf("rotated %s: new key %s; the old key is revoked\n", a[0], p.Key.KeyID)
				printKeyInfo(g, p.Key)
				printNotices(g, p.Notices)
			})
		},
	}
}

func printKeyInfo(g *globals, k api.KeyInfo) {
	g.printf("key %s: %s access", k.KeyID, k.Access)
	switch k.Access {
	case protocol.AccessExplicit:
		g.printf(" (%s)", strings.Join(k.AllowedNodes, ", "))
	case protocol.AccessTrusted:
		if k.MinTrustScore > 0 {
			g.printf(" (trust score at least %g)", k.MinTrustScore)
		}
	}
	g.printf("\n")
	if len(k.EscrowNodes) > 0 {
		g.printf("escrow: %d of %d (%s)\n", k.Threshold, len(k.EscrowNodes), strings.Join(k.EscrowNodes, ", "))
	}
	if k.ExpiresAt != 0 {
		g.printf("policy ends %s\n", time.UnixMilli(k.ExpiresAt).UTC().Format(time.RFC3339))
	}
	if k.Readers > 0 {
		g.printf("given to %s\n", plural(k.Readers, "reader", "readers"))
	}
}

func printNotices(g *globals, list []api.NoticeStatus) {
	for _, s := range list {
		if s.Delivered {
			g.printf("  %s %s: told\n", s.Role, s.NodeID)
		} else {
			g.printf("  %s %s: not reached (%s); it will be told when next seen\n", s.Role, s.NodeID, s.Error)
		}
	}
}

// readKey prints a lesson read by key (mesh get ID@NODE), decrypted if it
// is encrypted and this node may have the key; else it says why not.
func (g *globals) readKey(c *cobra.Command, key string) error {
	return g.withBackend(c, func(b api.API) error {
		res, err := b.ReadLesson(c.Context(), key)
		if err != nil {
			return coded(err, "cannot read %s: %s", key, whyNot(err))
		}
		if g.json {
			return g.printJSON(res)
		}
		printRecord(g, res.Lesson)
		g.printf("\nfrom %s (%s)", shortID(strings.SplitN(key, "@", 2)[1]), res.From)
		if res.Encrypted {
			g.printf("; decrypted with key %s from %s, held in memory until %s", res.KeyID, res.KeyFrom,
				time.UnixMilli(res.ExpiresAt).UTC().Format(time.RFC3339))
		}
		g.printf("\n")
		return nil
	})
}

// whyNot says in words why a lesson could not be read.
func whyNot(err error) string {
	switch {
	case errors.Is(err, protocol.ErrAccessDenied):
		return "ACCESS_DENIED: the key's policy does not admit this node (" + err.Error() + ")"
	case errors.Is(err, protocol.ErrKeyRevoked):
		return "KEY_REVOKED: the author revoked the key: every copy is unreadable for good (" + err.Error() + ")"
	case errors.Is(err, protocol.ErrAlreadyRevoked):
		return "ALREADY_REVOKED: " + err.Error()
	case errors.Is(err, protocol.ErrUnreachable):
		return "UNREACHABLE: neither the author nor enough escrow nodes could be reached (" + err.Error() + ")"
	}
	return err.Error()
}

// isEncrypted reports whether a document looks like an EncryptedLesson
// (an object with an encryption block), to verify it as one.
func isEncrypted(data []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return false
	}
	_, enc := m["encryption"]
	_, ct := m["ciphertext"]
	return enc || ct
}

// verifyEncrypted checks an EncryptedLesson document offline (its
// signature over the ciphertext) and, if a daemon runs, asks it whether
// the key is still available.
func (g *globals) verifyEncrypted(c *cobra.Command, data []byte) error {
	rep := struct {
		verifyReport
		Encrypted bool           `json:"encrypted"`
		KeyID     string         `json:"keyId,omitempty"`
		KeyStatus *api.KeyStatus `json:"keyStatus,omitempty"`
		KeyCheck  string         `json:"keyCheck,omitempty"`
	}{verifyReport: verifyReport{Algorithm: protocol.AlgorithmEd25519,
		Revocation: "not checked: offline verification has no revocation source",
		TrustPath:  "not checked: offline verification has no trust graph"}, Encrypted: true}
	el, err := protocol.DecodeEncryptedLesson(data)
	if err == nil {
		err = protocol.VerifyEncrypted(el, protocol.VerifyOptions{AllowOld: true})
		rep.Key, rep.NodeID, rep.KeyID = el.Key(), el.Signature.NodeID, el.Encryption.KeyID
		rep.Timestamp = time.UnixMilli(el.Signature.Timestamp).UTC().Format(time.RFC3339)
		rep.PublishedAt = time.UnixMilli(el.Publication.PublishedAt).UTC().Format(time.RFC3339)
		rep.Visibility = el.Publication.Visibility
		if pk, kerr := base64.StdEncoding.DecodeString(el.Signature.PublicKey); kerr == nil && len(pk) == 32 {
			rep.Fingerprint = protocol.Fingerprint(pk)
		}
	}
	rep.Valid = err == nil
	if err != nil {
		rep.Error = err.Error()
	} else if cl, derr := httpapi.DialRepo(c.Context(), g.repo, g.api); derr == nil {
		rep.KeyStatus, derr = cl.KeyStatus(c.Context(), el)
		if derr != nil {
			rep.KeyCheck = "could not ask the daemon: " + derr.Error()
		}
	} else {
		rep.KeyCheck = "not checked: no daemon running (mesh daemon) to ask the author or the escrow nodes"
	}
	if g.json {
		if perr := g.printJSON(rep); perr != nil {
			return perr
		}
	} else {
		printVerify(g, rep.verifyReport, err)
		if err == nil {
			g.printf("✓ Encrypted (aes-256-gcm, key %s): the signature covers the ciphertext; nothing was decrypted\n", rep.KeyID)
			switch st := rep.KeyStatus; {
			case st == nil:
				g.printf("? Key %s\n", rep.KeyCheck)
			case st.Status == api.KeyAvailable:
				g.printf("✓ Key available to this node (%s)\n", st.Detail)
			case st.Status == api.KeyRevoked:
				g.printf("✗ Key revoked: the lesson is unreadable for good (%s)\n", st.Detail)
			default:
				g.printf("? Key %s: %s\n", st.Status, st.Detail)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("verification failed: %w", err)
	}
	if rep.KeyStatus != nil && rep.KeyStatus.Status == api.KeyRevoked {
		return fmt.Errorf("verify %s: its key is revoked", rep.Key)
	}
	return nil
}
