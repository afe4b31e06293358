package session

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckUserID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		// Accepted: what applications use as ids, including every id the
		// gateway's percent-encoding test addresses.
		{name: "plain", id: "alice", ok: true},
		{name: "email", id: "ann@example.com", ok: true},
		{name: "email with plus", id: "a+b@example.com", ok: true},
		{name: "slash", id: "team/alice", ok: true},
		{name: "percent", id: "100%", ok: true},
		{name: "escape lookalike", id: "%2F", ok: true},
		{name: "inner space", id: "ann example", ok: true},
		{name: "hash and question mark", id: "c#dev?", ok: true},
		{name: "auth0 style", id: "auth0|5f7c8ec7c33c6c004bbafe82", ok: true},
		{name: "urn", id: "urn:user:42", ok: true},
		{name: "ldap dn", id: "cn=Ann,ou=people", ok: true},
		{name: "apostrophe", id: "o'brien@example.com", ok: true},
		{name: "digits only", id: "12345", ok: true},
		{name: "single char", id: "a", ok: true},
		{name: "dots inside", id: "a..b", ok: true},
		{name: "precomposed accent", id: "élodie", ok: true},
		{name: "german", id: "Jürgen Groß", ok: true},
		{name: "greek", id: "Ελένη", ok: true},
		{name: "cjk", id: "日本語", ok: true},
		{name: "hebrew", id: "שלום", ok: true},
		{name: "arabic", id: "مريم", ok: true},
		{name: "devanagari with marks", id: "नमस्ते", ok: true},
		{name: "non-ascii then punctuation", id: "josé.", ok: true},
		{name: "rtl then punctuation", id: "שלום!", ok: true},
		{name: "rtl with european digits", id: "שלום123", ok: true},
		{name: "arabic-indic digits", id: "١٢٣", ok: true},
		{name: "braces and space", id: "élodie@example.com {tag}", ok: true},
		{name: "longest", id: strings.Repeat("u", MaxUserIDLen), ok: true},
		{name: "longest multibyte", id: strings.Repeat("é", MaxUserIDLen/2), ok: true},

		// Refused.
		{name: "empty"},
		{name: "too long", id: strings.Repeat("u", MaxUserIDLen+1)},
		{name: "too long multibyte", id: strings.Repeat("é", MaxUserIDLen/2) + "x"},
		{name: "invalid utf8", id: "a\xff"},
		{name: "space only", id: " "},
		{name: "spaces only", id: "   "},
		{name: "leading space", id: " alice"},
		{name: "trailing space", id: "alice "},
		{name: "double space", id: "ann  example"},
		{name: "tab", id: "a\tb"},
		{name: "newline", id: "a\nb"},
		{name: "nul", id: "a\x00"},
		{name: "del", id: "a\x7f"},
		{name: "c1 control", id: "a\u0085b"},
		{name: "nbsp", id: "a\u00a0b"},
		{name: "ideographic space only", id: "\u3000"},
		{name: "en space", id: "a\u2002b"},
		{name: "line separator", id: "a\u2028b"},
		{name: "right-to-left override", id: "admin\u202etxt.exe"},
		{name: "left-to-right mark", id: "alice\u200e"},
		{name: "zero width space", id: "ali\u200bce"},
		{name: "zero width space only", id: "\u200b"},
		{name: "zero width joiner", id: "a\u200db"},
		{name: "zero width non-joiner", id: "a\u200cb"},
		{name: "byte order mark", id: "\ufeffalice"},
		{name: "soft hyphen", id: "ali\u00adce"},
		{name: "word joiner", id: "ali\u2060ce"},
		{name: "decomposed accent (not NFC)", id: "e\u0301lodie"},
		{name: "leading combining mark", id: "\u0301alice"},
		{name: "combining mark after space", id: "ann \u0301x"},
		{name: "fullwidth letters", id: "ａｌｉｃｅ"},
		{name: "ligature", id: "\ufb01le"},
		{name: "superscript", id: "x\u00b2"},
		{name: "roman numeral", id: "\u2167"},
		{name: "halfwidth katakana", id: "\uff71"},
		{name: "emoji", id: "alice\U0001f600"},
		{name: "mixed direction", id: "abcשלום"},
		{name: "mixed direction across space", id: "alice שלום"},
		{name: "latin with arabic-indic digits", id: "alice١"},
		{name: "mixed digit systems", id: "١٢٣1"},
		{name: "non-ascii punctuation", id: "ann\u2019s"},
		{name: "division slash lookalike", id: "team\u2215alice"},
		{name: "double quote", id: `a"b`},
		{name: "backslash", id: `a\b`},
		{name: "angle brackets", id: "<script>"},
		{name: "backtick", id: "a`b"},
		{name: "dot", id: "."},
		{name: "dot dot", id: ".."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckUserID(tc.id)
			if tc.ok {
				if err != nil || !ValidUserID(tc.id) {
					t.Fatalf("CheckUserID(%+q) = %v, want valid", tc.id, err)
				}
				return
			}
			if err == nil || ValidUserID(tc.id) {
				t.Fatalf("CheckUserID(%+q) accepted it", tc.id)
			}
			var ue *UserIDError
			if !errors.Is(err, ErrInvalidUser) || !errors.As(err, &ue) || ue.Reason == "" {
				t.Fatalf("CheckUserID(%+q) = %#v, want a *UserIDError matching ErrInvalidUser", tc.id, err)
			}
			// The message names an invisible character by code point,
			// never by echoing it.
			for _, r := range tc.id {
				if (r < 0x20 || r >= 0x7f) && r != 0xfffd && strings.ContainsRune(err.Error(), r) {
					t.Fatalf("error %q echoes %U", err, r)
				}
			}
		})
	}
}
