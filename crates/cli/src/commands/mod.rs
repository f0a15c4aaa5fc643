pub mod build;
pub mod pkg;
