pub mod build;
pub mod cache;
pub mod pkg;
pub mod run;
pub mod serve;
