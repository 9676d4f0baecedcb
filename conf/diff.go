package conf

import (
	"reflect"
	"strconv"
)

// Changed returns the keys whose values differ between a and b, in the
// order of the schema, spelt as in errors: "mqtt.max_inflight",
// "listener[1].acl_file". An array of tables whose length differs is one
// key, "listener"; an empty array equals a missing one. main uses it on
// SIGHUP to apply what changed and name what needs a restart.
func Changed(a, b Config) []string {
	var keys []string
	changed("", reflect.ValueOf(a), reflect.ValueOf(b), &keys)
	return keys
}

func changed(key string, a, b reflect.Value, out *[]string) {
	switch {
	case a.Kind() == reflect.Struct:
		for i := range a.NumField() {
			if name := tagName(a.Type().Field(i)); name != "" && name != "-" {
				changed(joinKey(key, name), a.Field(i), b.Field(i), out)
			}
		}
		return
	case a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0:
		return
	case a.Kind() == reflect.Slice && a.Type().Elem().Kind() == reflect.Struct && a.Len() == b.Len():
		for i := range a.Len() {
			changed(key+"["+strconv.Itoa(i)+"]", a.Index(i), b.Index(i), out)
		}
		return
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, key)
	}
}
