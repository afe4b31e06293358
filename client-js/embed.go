// Package clientjs embeds the browser client library so the gateway can serve
// it to its demo page at /client.js. The library itself is src/index.js, an
// ES module with no runtime dependencies; this file is the only Go here.
package clientjs

import _ "embed"

// Source is the ES module src/index.js.
//
//go:embed src/index.js
var Source []byte
