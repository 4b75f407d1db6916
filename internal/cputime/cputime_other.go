//go:build !unix

package cputime

// Process is unknown (zero) on this platform.
func Process() Usage { return Usage{} }
