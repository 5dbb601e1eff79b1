package main

import (
	"os"
	"time"

	sim "github.com/vigil-gw/vigil/firmware-sim"
)

func main() {
	s, err := sim.New(sim.Config{Seed: 1, Format: os.Args[1], FaultEvery: 20 * time.Second})
	if err != nil {
		panic(err)
	}
	if err := s.Record(os.Stdout, sim.DefaultStart.Add(10*time.Minute)); err != nil {
		panic(err)
	}
	sim.WriteTruth(os.Stderr, s.Truth())
}
