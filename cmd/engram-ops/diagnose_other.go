//go:build !linux && !darwin

package main

import (
	"errors"
	"os"
)

var errNotHere = errors.New("not measurable on this operating system")

func hostFilesystem(string) (fsStats, error)            { return fsStats{}, errNotHere }
func hostOpenFileLimit() (soft, hard uint64, err error) { return 0, 0, errNotHere }
func hostLockHolder(string) (int, error)                { return 0, errNotHere }
func processName(int) string                            { return "" }
func fileOwner(os.FileInfo) int                         { return -1 }
func accessible(string) error                           { return nil }
