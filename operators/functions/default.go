package functions

var builtins = NewRegistry()

// builtin registers f in the default registry (from init functions).
func builtin(fs ...*Func) {
	for _, f := range fs {
		builtins.Register(f)
	}
}

// Default returns the registry of all built-in functions. It is shared:
// do not Register into it.
func Default() *Registry { return builtins }
