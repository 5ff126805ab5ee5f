//! Links the addon the way napi-rs needs.
fn main() {
    napi_build::setup();
}
