//! `/api/settings` and `/api/settings/models`: the VR app's settings
//! (F8, F9) and model catalogue (F10, F11 and the catalogue actions).

use std::sync::Arc;

use poem_openapi::{param::Path, payload::Json, Enum, Object, OpenApi};

use super::{manager::Trigger, store, ModelStatus, Settings, SettingsError};
use crate::{
    ai::routes::Answer,
    auth::{Authed, Operator},
    catalog::Durability,
    http::{
        body::{JsonBody, OptionalJson, Text},
        codes::ErrorCode as E,
        error::ApiError,
        spec::{op, OpErrors, Storage},
    },
    state::{ApiTags, AppState},
    timestamp::Timestamp,
};

pub struct SettingsApi {
    pub state: Arc<AppState>,
}

/// `PUT /api/settings`: any of the keys (the app sends one at a time).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SettingsPatch {
    /// A depth model of the catalogue (`small`, `base`, `large`): the
    /// model bulk depth maps and the app's generations use.
    pub default_depth_model: Option<Text>,
    pub auto_generate_on_enter: Option<bool>,
    pub disable_auto_quality: Option<bool>,
    /// Make each new photo of my Immich library in 3D in the background
    /// (while `IMMICH_SYNC_SECS` is above 0).
    pub follow_library: Option<bool>,
}

#[derive(Debug, Object)]
pub struct SettingsSaved {
    pub success: bool,
    #[oai(flatten)]
    pub settings: Settings,
}

/// One model of the catalogue, as `GET /api/settings/models` lists it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ModelView {
    pub key: String,
    pub name: String,
    #[oai(rename = "type")]
    pub kind: crate::assets::Kind,
    pub params: String,
    pub memory: String,
    pub description: String,
    pub huggingface_id: String,
    pub status: ModelStatus,
    pub download_progress: u32,
    /// Bytes, as a string (as the app's upstream backend sends it).
    #[oai(nullable)]
    pub file_size_bytes: Option<String>,
    #[oai(nullable)]
    pub downloaded_at: Option<Timestamp>,
    /// The model the AI service holds now.
    pub is_active: bool,
    #[oai(rename = "is_loaded")]
    pub is_loaded: bool,
    /// The weights' licence (`Apache-2.0`, `CC-BY-NC-4.0`: non-commercial
    /// use only); null when not known here.
    #[oai(nullable)]
    pub license: Option<String>,
    /// The built-in depth engine runs it on this machine (`builtin` is
    /// one of the `AI_SERVICE_URL` endpoints).
    pub builtin: bool,
}

#[derive(Debug, Object)]
pub struct ModelList {
    pub models: Vec<ModelView>,
}

/// One model as the AI service lists it (`GET /api/models`).
#[derive(Debug, Object)]
pub struct AiModel {
    pub key: String,
    pub name: Option<String>,
    /// `depth` or `splat`.
    #[oai(rename = "type")]
    pub kind: Option<String>,
    pub params: Option<String>,
    /// `params` again, under the name the app reads.
    pub params_size: Option<String>,
    pub memory: Option<String>,
    pub description: Option<String>,
    pub huggingface_id: Option<String>,
    pub is_loaded: Option<bool>,
    pub is_downloaded: Option<bool>,
}

/// The AI service's model list, passed on (fields it adds included).
#[derive(Debug, Object)]
pub struct AiModelList {
    pub models: Vec<AiModel>,
    #[oai(nullable)]
    pub current_model: Option<String>,
    /// `gpu`, `cpu`, or null when nothing is loaded.
    #[oai(nullable)]
    pub current_device: Option<String>,
    pub default_model: Option<String>,
}

/// Named for what it is: a schema named like one of its fields makes
/// openapi-python-client's generated code shadow that field.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", rename = "ModelSyncResult")]
pub struct Synced {
    pub success: bool,
    pub message: String,
    /// The models downloaded according to the AI service.
    pub synced: Vec<String>,
    pub synced_count: u64,
}

#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Device {
    Auto,
    Cpu,
    Gpu,
}

#[derive(Debug, Object)]
pub struct LoadBody {
    pub device: Option<Device>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ModelAction {
    pub success: bool,
    pub message: String,
    #[oai(skip_serializing_if_is_none)]
    pub current_model: Option<String>,
}

#[derive(Debug, Object)]
pub struct ModelState {
    pub model_key: String,
    pub status: ModelStatus,
    #[oai(nullable)]
    pub downloaded_at: Option<Timestamp>,
}

#[derive(Debug, Object)]
pub struct ModelChanged {
    pub success: bool,
    pub model: ModelState,
}

#[OpenApi(prefix_path = "/api/settings", tag = "ApiTags::Settings")]
impl SettingsApi {
    /// The VR app's settings (created on first read)
    #[oai(path = "/", method = "get", operation_id = "getSettings")]
    async fn get(&self, auth: Authed) -> Result<Json<Settings>, ApiError> {
        let user = auth.0.user_id().map(str::to_string);
        let s = self
            .state
            .catalog
            .commit(Durability::Durable, move |txn, _| {
                if let Some(s) = store::settings_of(txn, user.as_deref())? {
                    return Ok::<_, SettingsError>(s);
                }
                let s = Settings::default();
                store::put_settings(txn, &s)?;
                Ok(s)
            })
            .await?;
        Ok(Json(s))
    }

    /// Change settings: any of the keys; a model that is not a depth model is a 400
    ///
    /// A signed-in person changes their own (starting from the global
    /// ones); the operator's token changes the global ones, which everyone
    /// who has not changed theirs has.
    #[oai(path = "/", method = "put", operation_id = "updateSettings")]
    async fn put(
        &self,
        auth: Authed,
        body: JsonBody<SettingsPatch>,
    ) -> Result<Json<SettingsSaved>, ApiError> {
        let user = auth.0.user_id().map(str::to_string);
        let p = body.0;
        let model = p.default_depth_model.map(|t| t.0);
        if model.is_none()
            && p.auto_generate_on_enter.is_none()
            && p.disable_auto_quality.is_none()
            && p.follow_library.is_none()
        {
            return Err(SettingsError::NoSettings.into());
        }
        let (auto, quality, follow) = (
            p.auto_generate_on_enter,
            p.disable_auto_quality,
            p.follow_library,
        );
        let who = user.clone();
        let model_given = model.is_some();
        let saved = self
            .state
            .catalog
            .commit(Durability::Durable, move |txn, _| {
                let mut s = store::settings_of(txn, user.as_deref())?.unwrap_or_default();
                if let Some(m) = &model {
                    let depth = store::depth_models(txn)?;
                    if !depth.contains(m) {
                        return Err(SettingsError::InvalidModel(m.clone(), depth.join(", ")));
                    }
                    s.default_depth_model = m.clone();
                }
                if let Some(a) = auto {
                    s.auto_generate_on_enter = a;
                }
                if let Some(q) = quality {
                    s.disable_auto_quality = q;
                }
                if let Some(f) = follow {
                    s.follow_library = f;
                }
                s.updated_at = Timestamp::now();
                store::put_settings_of(txn, user.as_deref(), &s)?;
                Ok(s)
            })
            .await?;
        // Turned on (or the model changed): the person's library is read
        // now, not at the next interval (following off: nothing to do).
        if saved.follow_library && (follow == Some(true) || model_given) {
            let _ = self.state.follower.sync_now(who.as_deref(), false);
        }
        Ok(Json(SettingsSaved {
            success: true,
            settings: saved,
        }))
    }

    /// The model catalogue, small, base, large, then SHARP
    #[oai(path = "/models", method = "get", operation_id = "listModels")]
    async fn models(&self, _auth: Authed) -> Result<Json<ModelList>, ApiError> {
        let records = self.state.models.records().await?;
        // What the AI service holds, when it answers; else what we know.
        let ai = self.state.models.ai_models().await.ok();
        let loaded = |key: &str| -> bool {
            let from_ai = ai.as_ref().and_then(|v| {
                v["models"]
                    .as_array()?
                    .iter()
                    .find(|m| m["key"] == key)?
                    .get("is_loaded")?
                    .as_bool()
            });
            from_ai.unwrap_or_else(|| self.state.models.current().as_deref() == Some(key))
        };
        let engine_on = self
            .state
            .config
            .ai_urls()
            .iter()
            .any(|u| u == crate::engine::BUILTIN);
        let models = records
            .into_iter()
            .map(|m| {
                let is_loaded = loaded(&m.key);
                // A download by the built-in engine says how far it is.
                let progress = self.state.ai.engine().progress(&m.key);
                let license = crate::engine::files::license(&m.key).map(str::to_string);
                let builtin = engine_on && crate::engine::files::repo(&m.key).is_some();
                ModelView {
                    is_active: is_loaded,
                    is_loaded,
                    key: m.key,
                    name: m.name,
                    kind: m.kind,
                    params: m.params,
                    memory: m.memory,
                    description: m.description,
                    huggingface_id: m.huggingface_id,
                    status: m.status,
                    download_progress: progress.unwrap_or(m.download_progress),
                    license,
                    builtin,
                    file_size_bytes: m.file_size_bytes.map(|b| b.to_string()),
                    downloaded_at: m.downloaded_at,
                }
            })
            .collect();
        Ok(Json(ModelList { models }))
    }

    /// The AI service's own model list, passed on
    ///
    /// Each model also carries `params_size` (the name the app reads).
    #[oai(path = "/models/ai", method = "get", operation_id = "listAiModels")]
    async fn ai_models(&self, _auth: Authed) -> Result<Json<Answer<AiModelList>>, ApiError> {
        let v = self.state.models.ai_models().await?;
        Answer::checked(v, E::AiRefused).map(Json)
    }

    /// Reconcile the catalogue with the AI service now
    #[oai(path = "/models/sync", method = "post", operation_id = "syncModels")]
    async fn sync(&self, _op: Operator) -> Result<Json<Synced>, ApiError> {
        let synced = self.state.models.sync().await?;
        Ok(Json(Synced {
            success: true,
            message: format!("synced {} downloaded models", synced.len()),
            synced_count: synced.len() as u64,
            synced,
        }))
    }

    /// Load a model into the AI service
    #[oai(
        path = "/models/:key/load",
        method = "post",
        operation_id = "loadModel"
    )]
    async fn load(
        &self,
        _op: Operator,
        key: Path<String>,
        body: OptionalJson<LoadBody>,
    ) -> Result<Json<ModelAction>, ApiError> {
        let device = body.0.and_then(|b| b.device).map(|d| match d {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
        });
        self.state
            .models
            .ensure_loaded(&key.0, Trigger::Manual, device)
            .await?;
        Ok(Json(ModelAction {
            success: true,
            message: format!("Model '{}' loaded successfully", key.0),
            current_model: Some(key.0),
        }))
    }

    /// Unload a model from the AI service
    #[oai(
        path = "/models/:key/unload",
        method = "post",
        operation_id = "unloadModel"
    )]
    async fn unload(
        &self,
        _op: Operator,
        key: Path<String>,
    ) -> Result<Json<ModelAction>, ApiError> {
        self.state.models.record(&key.0).await?;
        self.state.models.unload(Some(&key.0)).await?;
        Ok(Json(ModelAction {
            success: true,
            message: format!("Model '{}' unloaded successfully", key.0),
            current_model: None,
        }))
    }

    /// Download a model through the AI service (may take minutes)
    #[oai(
        path = "/models/:key/download",
        method = "post",
        operation_id = "downloadModel"
    )]
    async fn download(
        &self,
        _op: Operator,
        key: Path<String>,
    ) -> Result<Json<ModelChanged>, ApiError> {
        let m = self.state.models.download(&key.0).await?;
        Ok(Json(changed(m)))
    }

    /// Mark a model deleted (the AI service keeps its files)
    #[oai(path = "/models/:key", method = "delete", operation_id = "deleteModel")]
    async fn delete(
        &self,
        _op: Operator,
        key: Path<String>,
    ) -> Result<Json<ModelChanged>, ApiError> {
        let m = self.state.models.delete(&key.0).await?;
        Ok(Json(changed(m)))
    }
}

fn changed(m: super::ModelRecord) -> ModelChanged {
    ModelChanged {
        success: true,
        model: ModelState {
            model_key: m.key,
            status: m.status,
            downloaded_at: m.downloaded_at,
        },
    }
}

const AI: &[E] = &[E::AiRefused, E::AiUnreachable, E::AiNoCatalogue];

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getSettings", Storage::Writes, &[]),
    op(
        "updateSettings",
        Storage::Writes,
        &[E::NoSettings, E::InvalidModel],
    ),
    op("listModels", Storage::Reads, &[]),
    op("listAiModels", Storage::None, AI),
    op("syncModels", Storage::Writes, AI),
    op(
        "loadModel",
        Storage::Reads,
        &[
            E::OperatorOnly,
            E::OperatorOnly,
            E::ModelNotFound,
            E::ModelNotDownloaded,
            E::AiRefused,
            E::AiUnreachable,
            E::AiNoCatalogue,
        ],
    ),
    op(
        "unloadModel",
        Storage::Reads,
        &[
            E::OperatorOnly,
            E::ModelNotFound,
            E::AiRefused,
            E::AiUnreachable,
            E::AiNoCatalogue,
        ],
    ),
    op(
        "downloadModel",
        Storage::Writes,
        &[
            E::OperatorOnly,
            E::ModelNotFound,
            E::AiRefused,
            E::AiUnreachable,
            E::AiNoCatalogue,
        ],
    ),
    op(
        "deleteModel",
        Storage::Writes,
        &[E::OperatorOnly, E::ModelNotFound],
    ),
];
