// Package sim simulates a fleet of IoT sensors for vigil's demo, tests,
// evaluations and load benchmarks. It owns the signal models (temperature,
// humidity, vibration, machine heat, power, door), the payload encodings
// (JSON, InfluxDB line protocol, bare numbers), the fault injector (spike,
// drift, stuck, silence, burst, late, out_of_order, duplicate, malformed)
// and the ground truth of what was injected, so detectors can be scored.
//
// The core is pure: a Sim is a deterministic function of its Config. Time is
// simulated (Config.Start, Config.Rate) and never read from the clock, so the
// same seed yields the same readings byte for byte. Only the drivers touch
// the wall clock: Run paces publishing in real or accelerated time; Record
// writes vigil's replay format without any clock at all.
//
// A simulated device is a device like any other: it talks to vigil only
// through MQTT payloads. This package must not import any vigil package,
// so that nothing the simulator produces can lean on vigil's internals.
package sim
