pub mod fuzz_body;
