//go:build !linux

package main

func newSleeper() sleeper { return goSleeper{} }
