package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// flagSet is a flag.FlagSet whose every flag can also be set by an
// environment variable: --http-addr by CUTOVER_HTTP_ADDR. The command line
// wins over the environment.
type flagSet struct {
	*flag.FlagSet
	summary string
	// positional names the arguments the command takes besides flags
	// ("SERVICE", "[SERVICE]"); maxArgs is how many.
	positional string
	maxArgs    int
	args       []string
}

func newFlagSet(name, summary string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, summary: summary}
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "CUTOVER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies the environment, then the arguments.
func (fs *flagSet) parse(args []string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || err != nil {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, e)
		}
	})
	if err != nil {
		return err
	}
	// Arguments may come before, between or after the flags.
	for {
		if err := fs.FlagSet.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return nil
		}
		if len(fs.args) == fs.maxArgs {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		fs.args = append(fs.args, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (fs *flagSet) usage(w io.Writer) {
	pos := ""
	if fs.positional != "" {
		pos = " " + fs.positional
	}
	fmt.Fprintf(w, "Usage: cutover %s%s [flags]\n  %s\n", fs.Name(), pos, fs.summary)
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n      %s\n      env %s", help, envName(f.Name))
		if f.DefValue != "" {
			fmt.Fprintf(w, ", default %s", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
