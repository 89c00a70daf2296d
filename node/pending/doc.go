// Package pending keeps a bounded record of the publishers whose lessons a
// node refused because it does not trust them (issue: untrusted
// publications are not dropped in silence): who, on which topics, how many
// lessons, when first and last, and which peers had them. Never the
// content. The node lists it (mesh trust pending, mesh status) and, when a
// publisher becomes trusted, takes its entry to sync its lessons from those
// peers at once.
package pending
