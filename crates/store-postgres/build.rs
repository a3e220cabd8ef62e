//! Rebuilds the crate when a migration is added or removed (`sqlx::migrate!` reads
//! the folder at compile time; the `rls/` scripts are `include_str!`s, tracked anyway).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
