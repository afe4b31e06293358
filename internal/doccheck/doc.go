// Package doccheck holds the test that keeps the repository's documentation
// self-contained: every relative link in a Markdown file resolves to a file
// inside the repository, and no document points outside it.
package doccheck
