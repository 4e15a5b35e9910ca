fn main() {
    // Migrations and translations are embedded at compile time; rebuild when they change.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=locales");
}
