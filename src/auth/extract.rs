//! Who is asking, as an operation's parameter: `Authed` for any signed-in
//! caller, `Operator` for the routes that run the service (it refuses
//! everyone else with 403 `operator-only`, so such a route cannot forget
//! the check). Both declare the `bearerAuth` scheme, so generated clients
//! send the token; the caller itself was found by `access::guard`.

use poem::Request;
use poem_openapi::{
    registry::{MetaSecurityScheme, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

use super::Caller;
use crate::{
    access::Checked,
    http::error::{ApiError, ErrorCode},
};

const SCHEME: &str = "bearerAuth";

fn register_scheme(registry: &mut Registry) {
    registry.create_security_scheme(
        SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some(
                "The AUTH_TOKEN as a bearer (scripts, generated clients); browsers use the session cookie of POST /api/auth/login instead.",
            ),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: None,
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// The caller the access rule found for this request.
fn caller(req: &Request) -> Result<Caller, ApiError> {
    req.extensions()
        .get::<Checked>()
        .and_then(|c| c.caller.clone())
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "Sign in first"))
}

/// Any signed-in caller.
pub struct Authed(pub Caller);

impl<'a> ApiExtractor<'a> for Authed {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Authed(caller(request)?))
    }
}

/// A caller who runs the service: the token, an Immich admin, or anyone
/// the mode lets in (`AUTH=off`, this machine in loopback mode).
pub struct Operator(pub Caller);

impl<'a> ApiExtractor<'a> for Operator {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let c = caller(request)?;
        if !c.is_operator() {
            return Err(ApiError::new(
                ErrorCode::OperatorOnly,
                "Only an operator may do this: sign in as an Immich admin, or send the AUTH_TOKEN",
            )
            .into());
        }
        Ok(Operator(c))
    }
}
