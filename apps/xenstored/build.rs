fn main() {
    hvmlite::build::link();
}
