//! The shape shared by the service layer's error types ([`crate::vms::VmError`],
//! [`crate::images::ImageError`]): what kind of failure, in words for people, with the typed
//! cause kept as a source. Neither knows HTTP; `api::error` maps them to the envelope.

/// Generates a service error enum with the common kinds and its constructors.
macro_rules! service_error {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident($inner:ty) => $code:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        pub enum $name {
            /// The request breaks a rule; the message says which and how to fix it.
            #[error("{0}")]
            Invalid(String),
            /// The named thing does not exist.
            #[error("{0}")]
            NotFound(String),
            /// The name is taken.
            #[error("{0}")]
            AlreadyExists(String),
            /// The host lacks something (a VMM, the agent, privileges); the message names it.
            #[error("{0}")]
            HostProblem(String),
            /// Not built yet in this build.
            #[error("{0}")]
            Unavailable(String),
            /// The work failed; the message carries the whole chain of causes.
            #[error("{0}")]
            Failed(String),
            /// The store failed.
            #[error(transparent)]
            Store(#[from] banger_store::StoreError),
            /// A lookup by id, name or prefix failed.
            #[error(transparent)]
            Lookup(#[from] banger_store::LookupError),
            $($(#[$vmeta])* #[error(transparent)] $variant(#[from] $inner),)*
        }

        impl $name {
            /// The wire error code of this failure.
            pub fn code(&self) -> banger_proto::ErrorCode {
                use banger_proto::ErrorCode;
                match self {
                    Self::Invalid(_) => ErrorCode::BadRequest,
                    Self::NotFound(_) => ErrorCode::NotFound,
                    Self::AlreadyExists(_) => ErrorCode::AlreadyExists,
                    Self::HostProblem(_) => ErrorCode::HostProblem,
                    Self::Unavailable(_) => ErrorCode::Unavailable,
                    Self::Failed(_) => ErrorCode::OperationFailed,
                    Self::Store(banger_store::StoreError::AlreadyExists { .. }) => {
                        ErrorCode::AlreadyExists
                    }
                    Self::Store(_) => ErrorCode::OperationFailed,
                    Self::Lookup(banger_store::LookupError::NotFound { .. }) => ErrorCode::NotFound,
                    Self::Lookup(banger_store::LookupError::Ambiguous { .. }) => {
                        ErrorCode::BadRequest
                    }
                    Self::Lookup(_) => ErrorCode::OperationFailed,
                    $(Self::$variant(e) => ($code)(e),)*
                }
            }

            /// A broken rule.
            pub fn invalid(message: impl Into<String>) -> Self {
                Self::Invalid(message.into())
            }

            /// A missing thing.
            pub fn not_found(message: impl Into<String>) -> Self {
                Self::NotFound(message.into())
            }

            /// Failed work, from any error with its whole chain of causes.
            pub fn failed(err: &(dyn std::error::Error + 'static)) -> Self {
                Self::Failed(crate::api::error::chain(err))
            }

            /// A failure of kind `code`.
            pub fn new(code: banger_proto::ErrorCode, message: impl Into<String>) -> Self {
                use banger_proto::ErrorCode;
                let message = message.into();
                match code {
                    ErrorCode::BadRequest => Self::Invalid(message),
                    ErrorCode::NotFound => Self::NotFound(message),
                    ErrorCode::AlreadyExists => Self::AlreadyExists(message),
                    ErrorCode::HostProblem => Self::HostProblem(message),
                    ErrorCode::Unavailable => Self::Unavailable(message),
                    _ => Self::Failed(message),
                }
            }
        }
    };
}

pub(crate) use service_error;
