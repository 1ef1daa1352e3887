// Package pagewalk reads bbolt database files page by page, without bbolt,
// so that it works on the files bbolt refuses: torn or garbage meta pages,
// truncated files, garbage pages, page cycles and page ids past the end of
// the file. It validates both meta pages, walks the B+tree of every bucket
// from the best root, takes a census of every page, and reports each piece
// of damage as a Finding that names the page holding the bad bytes, the
// chain of pages from the root, the bucket, the element and the key range
// that hangs under it. It knows etcd's buckets and revision keys.
//
// # Hardening
//
// pagewalk is meant for hostile input. Every length, offset, count and page
// id read from disk is checked against the file before it is used; bad
// bytes become a *FormatError or a Finding, never a panic. Recursion is
// bounded (tree depth, bucket nesting) and a visited set stops cycles.
// Memory is bounded by the file's real size, never by a count read from
// disk: the census keeps a small summary per page and the keys of branch
// pages and leaf boundaries, capped at 1 GiB.
//
// A scan reads the file once, sequentially, in 4 MiB chunks, and then walks
// the tree in memory. The input is opened read-only and never locked (etcd
// may hold a lock); Scan reports when the file changed while it was read.
//
// Keys and values handed out by Node accessors and Result.ForEach alias
// read buffers: copy them to keep them.
package pagewalk
