//! [`ImageError`]: why an image or kernel operation failed.

crate::service_error::service_error! {
    /// Why registering, pulling or deleting an image or kernel failed.
    ImageError {}
}
