package conf

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// A binder copies a decoded TOML document (the map[string]any the toml
// package produces) into a struct, field by `toml` tag, and collects every
// unknown key, wrong type and unparsable value instead of stopping at the
// first. Keys match tags exactly: "Max_QoS" is a typo, not max_qos.
//
// Tables and arrays of tables the document names are merged into the
// struct's current values, so fields the file leaves out keep their defaults;
// a slice is replaced as a whole, each element starting from its setDefaults.
type binder struct {
	errs []*Error
}

// defaulter is implemented by the element types of table arrays, to set each
// new element's defaults before its keys are bound.
type defaulter interface{ setDefaults() }

func (b *binder) fail(key string, err error) {
	b.errs = append(b.errs, &Error{Key: key, Err: err})
}

func (b *binder) typeError(key, want string, v any) {
	b.fail(key, fmt.Errorf("expected %s, got %s", want, describe(v)))
}

// table binds m to the struct rv; path is the key of m ("" at the top).
func (b *binder) table(path string, m map[string]any, rv reflect.Value) {
	rt := rv.Type()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := joinKey(path, k)
		f, ok := fieldByTag(rt, k)
		if !ok {
			b.fail(key, unknownKey(rt, k))
			continue
		}
		b.value(key, m[k], rv.FieldByIndex(f.Index))
	}
}

// value binds the TOML value v to rv, a settable field.
func (b *binder) value(key string, v any, rv reflect.Value) {
	switch p := rv.Addr().Interface().(type) {
	case *Duration:
		s, ok := v.(string)
		if !ok {
			b.typeError(key, `a duration string such as "30s"`, v)
			return
		}
		if err := p.UnmarshalText([]byte(s)); err != nil {
			b.fail(key, err)
		}
		return
	case *Size:
		switch x := v.(type) {
		case string:
			if err := p.UnmarshalText([]byte(x)); err != nil {
				b.fail(key, err)
			}
		case int64:
			if x < 0 {
				b.fail(key, fmt.Errorf("invalid size %d: negative", x))
				return
			}
			*p = Size(x)
		default:
			b.typeError(key, `a size such as "64MiB" or an integer`, v)
		}
		return
	}

	switch rv.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			b.typeError(key, "string", v)
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		x, ok := v.(bool)
		if !ok {
			b.typeError(key, "boolean", v)
			return
		}
		rv.SetBool(x)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			b.typeError(key, "integer", v)
			return
		}
		if rv.OverflowInt(n) {
			b.fail(key, fmt.Errorf("%d is out of range", n))
			return
		}
		rv.SetInt(n)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			b.typeError(key, "table", v)
			return
		}
		b.table(key, m, rv)
	case reflect.Slice:
		b.slice(key, v, rv)
	case reflect.Pointer:
		// An optional setting: nil unless the file sets it.
		p := reflect.New(rv.Type().Elem())
		b.value(key, v, p.Elem())
		rv.Set(p)
	default:
		panic(fmt.Sprintf("conf: field %s has unsupported type %s", key, rv.Type()))
	}
}

// slice binds an array of tables ([[listener]] or listener = [{...}]) to a
// slice of structs, replacing its contents.
func (b *binder) slice(key string, v any, rv reflect.Value) {
	var elems []any
	switch x := v.(type) {
	case []map[string]any:
		for _, m := range x {
			elems = append(elems, m)
		}
	case []any:
		elems = x
	default:
		b.typeError(key, "array of tables", v)
		return
	}
	et := rv.Type().Elem()
	out := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
	for i, e := range elems {
		ev := out.Index(i)
		if d, ok := ev.Addr().Interface().(defaulter); ok {
			d.setDefaults()
		}
		ekey := key + "[" + strconv.Itoa(i) + "]"
		if et.Kind() == reflect.Struct {
			m, ok := e.(map[string]any)
			if !ok {
				b.typeError(ekey, "table", e)
				continue
			}
			b.table(ekey, m, ev)
		} else {
			b.value(ekey, e, ev)
		}
	}
	rv.Set(out)
}

// fieldByTag returns the field of struct type rt whose toml tag is name.
func fieldByTag(rt reflect.Type, name string) (reflect.StructField, bool) {
	for i := range rt.NumField() {
		f := rt.Field(i)
		if tagName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

// unknownKey returns an error wrapping ErrUnknownKey that suggests the key of
// rt closest to name, if one is close enough to be a typo.
func unknownKey(rt reflect.Type, name string) error {
	best, bestDist := "", 3
	for i := range rt.NumField() {
		tag := tagName(rt.Field(i))
		if tag == "" || tag == "-" {
			continue
		}
		// Two edits make a typo of a long key, one of a short one: "foo"
		// is not a typo of "log".
		limit := 1
		if len(tag) >= 6 {
			limit = 2
		}
		d := editDistance(strings.ToLower(name), tag)
		if d <= limit && d < bestDist {
			best, bestDist = tag, d
		}
	}
	if best == "" {
		return ErrUnknownKey
	}
	return fmt.Errorf("%w (did you mean %s?)", ErrUnknownKey, best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // not a typo of any key; spare the work
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names a decoded TOML value's type for errors, with the value
// itself for scalars: `string "32"`, `integer 10`.
func describe(v any) string {
	const maxLen = 40
	switch x := v.(type) {
	case string:
		if len(x) > maxLen {
			x = x[:maxLen] + "…"
		}
		return "string " + strconv.Quote(x)
	case int64:
		return "integer " + strconv.FormatInt(x, 10)
	case float64:
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case time.Time:
		return "datetime"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// joinKey appends the key part to path, quoting it as TOML would if it is
// not a bare key: joinKey("mqtt", "a b") is `mqtt."a b"`.
func joinKey(path, part string) string {
	q := toml.Key{part}.String()
	if path == "" {
		return q
	}
	return path + "." + q
}
