// Package webui is the node's web UI: server-rendered pages (html/template,
// embedded with go:embed; no build step, no CDN, a little hand-written JS
// for live updates) served on the loopback API's address by mesh daemon.
//
// Pages: Node (identity, reachability, relays, peers, sync), Memories
// (list, search, open, store, delete, publish, revoke, hard revoke),
// Network search (trusted peers and directories, each result with its
// publisher, trust path, signature check and freshness, partial answers
// marked), Trust (levels, hops, add and remove, pending publishers,
// referrals, and an SVG picture of the trust graph drawn here), Following
// (topics and feeds), and Watches (standing queries, with their matches
// arriving live over server-sent events).
//
// Security. `mesh ui` asks the control API (bearer token) for a one-time
// login link ([Server.NewLogin]); opening it sets an HttpOnly,
// SameSite=Strict session cookie. Every page needs the session; every
// state-changing request (POST) needs the session, a same-origin request
// (the Origin header, or Sec-Fetch-Site: same-origin) and the session's
// form token. The loopback API in front of it also refuses non-loopback
// Host headers (DNS rebinding) and cross-site browser requests.
//
// The UI depends only on api.API: it does nothing a controller cannot do.
package webui
