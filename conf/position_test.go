package conf

import (
	"testing"

	"github.com/BurntSushi/toml"
)

// scanCases are documents with the expected lines of some of their keys.
// They also seed FuzzParse.
var scanCases = []struct {
	name string
	src  string
	want map[string]int
}{
	{
		name: "tables and arrays of tables",
		src: `a = 1
[t]
b = 2
[[l]]
x = 1
[[l]]
x = 2
[l.sub]
y = 3
[[l.arr]]
z = 1
[[l]]
[[l.arr]]
z = 2
`,
		want: map[string]int{
			"a": 1, "t": 2, "t.b": 3, "l": 4, "l[0]": 4, "l[0].x": 5, "l[1]": 6, "l[1].x": 7,
			"l[1].sub": 8, "l[1].sub.y": 9, "l[1].arr[0]": 10, "l[1].arr[0].z": 11,
			"l[2]": 12, "l[2].arr[0]": 13, "l[2].arr[0].z": 14,
		},
	},
	{
		name: "dotted and quoted keys",
		src: `a.b.c = 1
"quoted key" = 2
'literal.key' = 3
[ "t 1" . u ]
"\u0041\t" = 4
`,
		want: map[string]int{"a.b.c": 1, `"quoted key"`: 2, `"literal.key"`: 3, `"t 1".u`: 4, `"t 1".u."A\t"`: 5},
	},
	{
		name: "multi-line values",
		src: `s = """
one
two \
  three"""
t = '''
x''''
u = "a\"b#c" # comment = 1
arr = [
  1, # x = 2
  [2, 3],
  """
""",
]
inl = {
  a = 1, # comment
  b = { c = [ { d = 1 },
              { d = 2 } ] },
}
after = 2019-01-01 10:00:00
last = 1
`,
		want: map[string]int{
			"s": 1, "t": 5, "u": 7, "arr": 8, "inl": 14, "inl.a": 15, "inl.b": 16, "inl.b.c": 16,
			"inl.b.c[0].d": 16, "inl.b.c[1].d": 17, "after": 19, "last": 20,
		},
	},
	{
		name: "crlf and bom",
		src:  "\xef\xbb\xbfa = 1\r\n[t]\r\nb = 2\r\n",
		want: map[string]int{"a": 1, "t": 2, "t.b": 3},
	},
}

func TestScanKeyLines(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]any
			md, err := toml.Decode(tc.src, &doc)
			if err != nil {
				t.Fatal(err)
			}
			kl := scanKeyLines(tc.src, md.Keys())
			if kl == nil {
				t.Fatal("scan disagrees with MetaData.Keys")
			}
			for k, want := range tc.want {
				if got, ok := kl[k]; !ok || got != want {
					t.Errorf("line of %s = %d, %v; want %d", k, got, ok, want)
				}
			}
			if t.Failed() {
				t.Logf("scanned: %v", kl)
			}
		})
	}
}

func TestScanKeyLines_Disagreement(t *testing.T) {
	// Keys that are not the document's: the scan must not be trusted.
	src := "a = 1\nb = 2\n"
	if kl := scanKeyLines(src, []toml.Key{{"a"}, {"c"}}); kl != nil {
		t.Fatalf("scanKeyLines with wrong keys = %v, want nil", kl)
	}
	if kl := scanKeyLines(src, []toml.Key{{"a"}}); kl != nil {
		t.Fatalf("scanKeyLines with too few keys = %v, want nil", kl)
	}
}

func TestKeyLines_LineOf(t *testing.T) {
	kl := keyLines{"listener": 4, "listener[0]": 4, "listener[0].address": 5, "mqtt.tls.cert": 9, "mqtt.tls": 8, `"a.b".c`: 12}
	tests := []struct {
		key  string
		want int
	}{
		{"listener[0].address", 5},
		{"listener[0].protocol", 4}, // not in the file: its table
		{"listener[3].address", 4},  // not in the file: the array
		{"mqtt", 8},                 // implicit: its first sub-key
		{"mqtt.tls.key", 8},
		{`"a.b"`, 12},
		{`"a.b".d`, 12},
		{"data_dir", 0},
		{"", 0},
	}
	for _, tc := range tests {
		if got := kl.lineOf(tc.key); got != tc.want {
			t.Errorf("lineOf(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
	var none keyLines
	if got := none.lineOf("a.b"); got != 0 {
		t.Errorf("nil lineOf = %d", got)
	}
}

func TestParentKey(t *testing.T) {
	for key, want := range map[string]string{
		"a":             "",
		"a.b":           "a",
		"a[1].b":        "a[1]",
		"a[1]":          "a",
		`a."b.c[0]"`:    "a",
		`"x\"y.z".w[2]`: `"x\"y.z".w`,
	} {
		if got := parentKey(key); got != want {
			t.Errorf("parentKey(%q) = %q, want %q", key, got, want)
		}
	}
}
