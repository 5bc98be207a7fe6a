package config

import "fmt"

// FlagSpec describes a key for a command-line library other than package
// flag (the CLI uses pflag): its name, the type its value is read as, its
// default and its help.
type FlagSpec struct {
	Key     string
	Type    string // string, duration, bool, strings (comma list), map (comma list of k=v)
	Default string // in the flag/environment text form
	Help    string // with the environment variable that also sets it
}

// FlagSpecs lists every key as a FlagSpec, sorted by key. Values given on a
// command line go to Load as RegisterFlags' set func returns them: key →
// text.
func FlagSpecs() []FlagSpec {
	s, d := schema(), Default()
	out := make([]FlagSpec, 0, len(s.keys))
	for _, key := range s.keys {
		f := s.fields[key]
		out = append(out, FlagSpec{Key: key, Type: f.kind.typeName(), Default: f.text(d),
			Help: fmt.Sprintf("%s ($%s)", f.help, EnvVar(key))})
	}
	return out
}

func (k kind) typeName() string {
	switch k {
	case kindDuration:
		return "duration"
	case kindBool:
		return "bool"
	case kindList:
		return "strings"
	case kindMap:
		return "map"
	}
	return "string"
}
