//! Helpers shared by the benches (inputs built the same way for every codec compared).
