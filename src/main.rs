//! The `bifrons` binary.

fn main() {
    println!("bifrons");
}
