//go:build linux

package mremaptest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mappingNamed is the start of the mapping /proc/self/maps names name.
func mappingNamed(name string) (uint64, error) {
	start, _, err := mappingRange(name)
	return start, err
}

// mappingRange is the start and end of the mapping /proc/self/maps names
// name.
func mappingRange(name string) (uint64, uint64, error) {
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasSuffix(line, " "+name) {
			r, _, _ := strings.Cut(line, " ")
			lo, hi, _ := strings.Cut(r, "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			return start, end, errors.Join(err1, err2)
		}
	}
	return 0, 0, fmt.Errorf("no %s mapping in /proc/self/maps", name)
}

// MappingAt reads /proc/self/maps for the mapping that contains addr; nil
// if none does.
func MappingAt(addr uint64) (*Mapping, error) { return MappingOver(addr, 0) }

// MappingOver reads /proc/self/maps for the mapping that contains addr,
// with Count the mappings [addr, addr+size) spans (the first one and those
// after it that start before its end); nil if none contains addr.
func MappingOver(addr, size uint64) (*Mapping, error) {
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	var found *Mapping
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		// start-end perms offset dev inode<spaces>path
		line := s.Text()
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		switch {
		case err1 != nil || err2 != nil:
			continue
		case found != nil && start < addr+size && start > addr:
			found.Count++ // a later mapping the range spans (lines are in address order)
		case found == nil && addr >= start && addr < end:
			rest := line
			for i := 0; i < 5; i++ {
				rest = strings.TrimLeft(rest, " ")
				_, rest, _ = strings.Cut(rest, " ")
			}
			found = &Mapping{Permissions: fields[1], Path: strings.TrimLeft(rest, " "), Count: 1}
		}
	}
	return found, s.Err()
}
