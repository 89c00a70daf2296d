package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

func publishCmd(g *globals) *cobra.Command {
	var (
		visibility string
		topics     []string
		encrypt    bool
		policy     policyFlags
	)
	c := &cobra.Command{
		Use:   "publish ID",
		Short: "Sign a record for publication (public or unlisted), in the clear or encrypted",
		Long: `Sign a record with the node's Ed25519 key for publication. Private records are never
signed. The signed form is kept with the record; mesh export prints it.

With --encrypt, the record is encrypted (AES-256-GCM) under a new random key that stays on
this node, and the encrypted form is signed and published: every node may hold and forward
it, only the readers the key's policy admits get the key (mesh get ID@NODE on their node),
and mesh revoke ID --hard deletes the key, so that every copy becomes unreadable.

  --access trusted      nodes with a trust path from this node (the default), --min-trust 0.5
                        for a minimum trust score (1 direct, halved per hop)
  --access explicit     only the nodes given with --allow (repeatable or comma-separated)
  --access public       anyone
  --escrow A,B,C        k-of-n shares of the key on nodes you trust fully, so that readers can
  --threshold 2         read while this node is offline (default k: a majority)`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if visibility != protocol.VisibilityPublic && visibility != protocol.VisibilityUnlisted {
				return usagef("--visibility %q: want public or unlisted", visibility)
			}
			if !encrypt {
				if name := policy.changed(c); name != "" {
					return usagef("--%s applies to encrypted publications: add --encrypt", name)
				}
			} else {
				opts, err := policy.options(api.PolicyOptions{})
				if err != nil {
					return err
				}
				return show(g, c, func(b api.API) (*api.EncryptedPublication, error) {
					return b.PublishEncrypted(c.Context(), a[0], api.EncryptOptions{Visibility: visibility, Topics: topics, Policy: opts})
				}, func(p *api.EncryptedPublication) {
					g.printf("published %s encrypted (%s)\nkey: %s\n", a[0], visibility, p.EncryptedLesson.Key())
					printKeyInfo(g, p.Key)
					printNotices(g, p.Notices)
				})
			}
			return show(g, c, func(b api.API) (*protocol.SignedLesson, error) {
				return b.Publish(c.Context(), a[0], api.PublishOptions{Visibility: visibility, Topics: topics})
			}, func(sl *protocol.SignedLesson) {
				g.printf("published %s (%s)\nkey: %s\n", a[0], visibility, sl.Key())
			})
		},
	}
	c.Flags().StringVar(&visibility, "visibility", protocol.VisibilityPublic, "public or unlisted")
	c.Flags().StringSliceVar(&topics, "topic", nil, "MESH topics to announce on (repeatable or comma-separated)")
	c.Flags().BoolVar(&encrypt, "encrypt", false, "publish encrypted under a new key this node keeps (see --access, --escrow)")
	policy.register(c)
	return c
}

func exportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "export ID",
		Short: "Print a published record's SignedLesson JSON (its EncryptedLesson if published encrypted)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.withBackend(c, func(b api.API) error {
				el, err := b.ExportEncrypted(c.Context(), a[0])
				if err == nil {
					return g.printJSON(el)
				}
				if !errors.Is(err, protocol.ErrUnknownLesson) {
					return err
				}
				sl, err := b.Export(c.Context(), a[0])
				if err != nil {
					return err
				}
				return g.printJSON(sl)
			})
		},
	}
}

// verifyReport is the result of verifying a SignedLesson.
type verifyReport struct {
	Valid       bool   `json:"valid"`
	Algorithm   string `json:"algorithm"`
	Key         string `json:"key,omitempty"`
	NodeID      string `json:"nodeId,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Timestamp   string `json:"timestamp,omitempty"`
	PublishedAt string `json:"publishedAt,omitempty"`
	Visibility  string `json:"visibility,omitempty"`
	Revocation  string `json:"revocation"`
	TrustPath   string `json:"trustPath"`
	Error       string `json:"error,omitempty"`
}

func verifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify lessonId@nodeId | FILE | -",
		Short: "Verify a lesson: by key on the network, or a SignedLesson or EncryptedLesson file offline",
		Long: `mesh verify lessonId@nodeId fetches the lesson (local cache, else its publisher,
else any connected peer), checks its Ed25519 signature, asks the publisher whether it
was revoked, and shows the trust path to the author; for an encrypted lesson, whether
its key is still available to this node.

mesh verify FILE (or - for stdin) checks a SignedLesson or EncryptedLesson JSON
document (from mesh export) offline: the signature over its RFC 8785 canonical form
(of an EncryptedLesson, over the ciphertext: no key needed), that the author's node ID
is the signing key, and that the timestamp is not in the future. For an EncryptedLesson,
a running daemon is asked whether the key is still available (not revoked, and served
to this node); without one, that is not checked. A Revocation file is checked the
same way (signed by the lesson's publisher).

Exits 1 if the lesson is invalid, revoked or not found.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if _, err := os.Stat(a[0]); err != nil && a[0] != "-" {
				if _, _, kerr := protocol.ParseKey(a[0]); kerr == nil {
					return g.verifyKey(c, a[0])
				}
			}
			data, err := readInput(a[0], max(protocol.MaxSignedLessonSize, protocol.MaxEncryptedLessonSize))
			if err != nil {
				return err
			}
			// A file saved by an editor that marks UTF-8 with a BOM.
			data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
			if err := notJSON(a[0], data); err != nil {
				return err
			}
			if isRevocation(data) {
				return g.verifyRevocationFile(data)
			}
			if isEncrypted(data) {
				return g.verifyEncrypted(c, data)
			}
			rep := verifyReport{Algorithm: protocol.AlgorithmEd25519,
				Revocation: "not checked: offline verification has no revocation source",
				TrustPath:  "not checked: offline verification has no trust graph"}
			sl, err := protocol.DecodeSignedLesson(data)
			if err == nil {
				err = protocol.Verify(sl, protocol.VerifyOptions{AllowOld: true})
				rep.Key = sl.Key()
				rep.NodeID = sl.Signature.NodeID
				rep.Timestamp = time.UnixMilli(sl.Signature.Timestamp).UTC().Format(time.RFC3339)
				rep.PublishedAt = time.UnixMilli(sl.Publication.PublishedAt).UTC().Format(time.RFC3339)
				rep.Visibility = sl.Publication.Visibility
				if pk, kerr := base64.StdEncoding.DecodeString(sl.Signature.PublicKey); kerr == nil && len(pk) == 32 {
					rep.Fingerprint = protocol.Fingerprint(pk)
				}
			}
			rep.Valid = err == nil
			if err != nil {
				rep.Error = err.Error()
			}
			if g.json {
				if perr := g.printJSON(rep); perr != nil {
					return perr
				}
			} else {
				printVerify(g, rep, err)
			}
			if err != nil {
				return fmt.Errorf("verification failed: %w", err)
			}
			return nil
		},
	}
}

// isRevocation reports whether data is a JSON object whose "type" is
// "revocation".
func isRevocation(data []byte) bool {
	var probe struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Type == protocol.MsgRevocation
}

// revocationReport is mesh verify's report on a Revocation file.
type revocationReport struct {
	Valid       bool   `json:"valid"`
	Algorithm   string `json:"algorithm"`
	Revokes     string `json:"revokes,omitempty"`
	NodeID      string `json:"nodeId,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	RevokedAt   string `json:"revokedAt,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
}

// verifyRevocationFile checks a Revocation offline: its signature, and
// that it is signed by the lesson's publisher.
func (g *globals) verifyRevocationFile(data []byte) error {
	rep := revocationReport{Algorithm: protocol.AlgorithmEd25519}
	rev, err := protocol.DecodeRevocation(data)
	if err == nil {
		err = protocol.VerifyRevocation(rev, protocol.VerifyOptions{AllowOld: true})
		rep.Revokes, rep.NodeID, rep.Reason = rev.Key(), rev.NodeID, rev.Reason
		rep.RevokedAt = time.UnixMilli(rev.RevokedAt).UTC().Format(time.RFC3339)
		if pk, kerr := base64.StdEncoding.DecodeString(rev.Signature.PublicKey); kerr == nil && len(pk) == 32 {
			rep.Fingerprint = protocol.Fingerprint(pk)
		}
	}
	rep.Valid = err == nil
	if err != nil {
		rep.Error = err.Error()
	}
	if g.json {
		if perr := g.printJSON(rep); perr != nil {
			return perr
		}
	} else if err != nil {
		g.printf("✗ Revocation invalid: %v\n", err)
	} else {
		g.printf("✓ Signature valid (ed25519)\n✓ Revocation of %s by its publisher %s (fingerprint: %s)\n✓ Revoked at: %s\n", rep.Revokes, rep.NodeID, rep.Fingerprint, rep.RevokedAt)
		if rep.Reason != "" {
			g.printf("  Reason: %s\n", rep.Reason)
		}
	}
	if err != nil {
		return fmt.Errorf("verification failed: %w", err)
	}
	return nil
}

func printVerify(g *globals, rep verifyReport, err error) {
	mark := func(ok bool) string {
		if ok {
			return "✓"
		}
		return "✗"
	}
	sigOK := err == nil || errors.Is(err, protocol.ErrTimestamp)
	keyOK := sigOK || !errors.Is(err, protocol.ErrKeyMismatch)
	if sigOK {
		g.printf("%s Signature valid (ed25519)\n", mark(true))
	} else {
		g.printf("%s Signature invalid: %v\n", mark(false), err)
	}
	if rep.NodeID != "" {
		g.printf("%s Author: %s (fingerprint: %s)\n", mark(keyOK && sigOK), rep.NodeID, rep.Fingerprint)
	}
	if rep.Timestamp != "" {
		g.printf("%s Timestamp: %s\n", mark(!errors.Is(err, protocol.ErrTimestamp)), rep.Timestamp)
	}
	g.printf("? Revocation %s\n", rep.Revocation)
	g.printf("? Trust path %s\n", rep.TrustPath)
}

// verifyKey verifies a lesson by key through the node and prints the seed's
// five lines (six for an encrypted lesson: its key). It fails (exit 1) if
// any check it could make failed: not found, signature, revoked, key not
// available, no trust path; a check it could not make is never shown as
// passed.
func (g *globals) verifyKey(c *cobra.Command, key string) error {
	var rep *api.VerifyReport
	err := g.withBackend(c, func(b api.API) error {
		var err error
		rep, err = b.VerifyKey(c.Context(), key)
		return err
	})
	if err != nil {
		return err
	}
	found := rep.Lesson != nil || rep.EncryptedLesson != nil
	keyOK := rep.KeyStatus == nil || rep.KeyStatus.Status == "available"
	if g.json {
		if err := g.printJSON(rep); err != nil {
			return err
		}
	} else {
		mark := func(ok bool) string {
			if ok {
				return "✓"
			}
			return "✗"
		}
		switch {
		case found:
			if rep.Valid {
				g.printf("✓ Signature valid (ed25519), from %s\n", rep.Source)
			} else {
				g.printf("✗ Signature invalid: %s\n", rep.Error)
			}
			g.printf("%s Author: %s (fingerprint: %s)\n", mark(rep.Valid), rep.NodeID, rep.Fingerprint)
			g.printf("%s Timestamp: %s\n", mark(rep.Valid), time.UnixMilli(rep.Timestamp).UTC().Format(time.RFC3339))
			if ks := rep.KeyStatus; ks != nil {
				g.printf("%s Key %s: %s (%s)\n", mark(keyOK), ks.KeyID, ks.Status, ks.Detail)
			}
			if cr := rep.Carried; cr != nil {
				how := "over LoRa"
				if strings.HasPrefix(cr.Via, "udp:") {
					how = "over UDP"
				}
				if cr.Valid {
					g.printf("✓ Signed by sensor %s %s (%s, seq %d), carried by gateway %s\n", cr.Sensor, how, cr.Stream, cr.Seq, cr.Carrier)
				} else {
					g.printf("✗ Sensor proof invalid: %s (carried by %s)\n", cr.Error, cr.Carrier)
				}
			}
		case rep.Revoked:
			g.printf("✗ Lesson: not held anywhere reachable; its publisher revoked it\n")
		default:
			g.printf("✗ Not found: %s\n", rep.Error)
		}
		switch {
		case rep.Revoked:
			g.printf("✗ Revoked: %s\n", strings.TrimPrefix(rep.RevocationSource, "revoked: "))
		case found:
			g.printf("✓ Not revoked (%s)\n", rep.RevocationSource)
		}
		switch {
		case rep.Trusted:
			g.printf("✓ Trust path: %s\n", formatPath(rep.TrustPath))
		case rep.NodeID != "":
			g.printf("✗ Trust path: none to %s (mesh trust add %s, or a vouch of someone you trust)\n", rep.NodeID, rep.NodeID)
		}
	}
	switch {
	case rep.Revoked:
		return coded(protocol.ErrAlreadyRevoked, "verify %s: revoked by its publisher", key)
	case !found:
		return coded(protocol.ErrUnknownLesson, "verify %s: %s", key, rep.Error)
	case !rep.Valid:
		return coded(protocol.ErrInvalidSignature, "verify %s: %s", key, rep.Error)
	case rep.Carried != nil && !rep.Carried.Valid:
		return coded(protocol.ErrInvalidSignature, "verify %s: the sensor's proof: %s", key, rep.Carried.Error)
	case !keyOK:
		return fmt.Errorf("verify %s: the key is %s: %s", key, rep.KeyStatus.Status, rep.KeyStatus.Detail)
	case !rep.Trusted:
		return coded(protocol.ErrUntrusted, "verify %s: no trust path to its author %s", key, rep.NodeID)
	}
	return nil
}
