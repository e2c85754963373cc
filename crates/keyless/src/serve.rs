//! `keyless serve`: first-start bootstrap, then both listeners.

use std::convert::Infallible;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use keyless_api::{ApiState, WifCache};
use keyless_auth::{Authorizer, Credentials, MasterKey};
use keyless_federation::OidcVerifier;
use keyless_policy::{Effect, OrgPolicy, OrgStatement};
use keyless_s3::{S3Settings, S3State};
use keyless_store::Store;
use tokio::net::TcpListener;

use crate::config::{Config, ServeArgs};

/// How often each node reads the change feed; revocations reach every node
/// within this interval plus one database read.
const CHANGE_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often audit events are indexed and delivered to audit buckets.
const AUDIT_DELIVERY_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    init_logging(config.log_json);

    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    // Object bytes, the database and the keys are for this user only.
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make data directory {} private (mode 0700)", config.data_dir.display()))?;
    let master = MasterKey::load_or_create(&config.data_dir.join("master.key"))?;
    let store = Store::open(&config.data_dir).await.context("cannot open the metadata store")?;
    let credentials = Arc::new(Credentials::new(store.clone(), &master));
    bootstrap(&config, &store, &credentials).await?;
    credentials.load_revocations().await.context("cannot load the revocation state")?;

    let authorizer = Arc::new(Authorizer::new(store.clone()));
    let wif_cache = Arc::new(WifCache::new(store.clone()));
    {
        let authorizer = authorizer.clone();
        let wif_cache = wif_cache.clone();
        keyless_auth::credentials::spawn_change_poller(credentials.clone(), CHANGE_POLL_INTERVAL, move |changes| {
            authorizer.apply_changes(changes);
            wif_cache.apply_changes(changes);
        });
    }

    let journal = keyless_audit::Journal::open(&config.data_dir.join("audit")).await.context("cannot open the audit journal")?;
    let signing_seed = master.derive("audit-checkpoint-signing");
    let delivery = Arc::new(
        keyless_audit::Delivery::new(store.clone(), journal.path().to_path_buf(), &signing_seed)
            .ok_or_else(|| anyhow::anyhow!("cannot derive the audit signing key"))?,
    );
    delivery.clone().spawn(AUDIT_DELIVERY_INTERVAL);
    let metrics = Arc::new(keyless_audit::Metrics::default());

    let tls = config.tls.as_ref().map(crate::listen::tls_acceptor).transpose()?;
    // Bind both before serving either, so /healthz succeeds only when both are bound.
    let s3_listener = TcpListener::bind(config.s3_listen).await.with_context(|| format!("cannot listen on {} (S3)", config.s3_listen))?;
    let api_listener = TcpListener::bind(config.api_listen).await.with_context(|| format!("cannot listen on {} (API)", config.api_listen))?;
    // The bound addresses, not the configured ones: with port 0 the kernel
    // picks a free port, and the "keyless serving" line is how a caller learns it.
    let (s3_addr, api_addr) = (s3_listener.local_addr()?, api_listener.local_addr()?);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_api_url = config.public_api_url.clone().unwrap_or_else(|| format!("{scheme}://{api_addr}"));

    let s3_state = Arc::new(S3State {
        store: store.clone(),
        journal: journal.clone(),
        metrics: metrics.clone(),
        credentials: credentials.clone(),
        authorizer: authorizer.clone(),
        settings: S3Settings { region: config.region.clone(), virtual_host_domain: config.s3_virtual_host_domain.clone() },
    });
    let s3 = keyless_s3::build(s3_state).map_err(anyhow::Error::msg)?;
    let api_state = Arc::new(ApiState {
        store,
        credentials,
        authorizer,
        oidc: OidcVerifier::new(),
        wif_cache,
        journal,
        delivery,
        metrics,
        public_api_url,
    });
    let api = keyless_api::router(api_state);

    tracing::info!(s3 = %s3_addr, api = %api_addr, tls = tls.is_some(), data_dir = %config.data_dir.display(), "keyless serving");

    let s3_task = tokio::spawn(crate::listen::serve(s3_listener, tls.clone(), "s3", move |connection| {
        let s3 = s3.clone();
        hyper::service::service_fn(move |request| {
            let s3 = s3.clone();
            async move { Ok::<_, Infallible>(s3.handle(request, connection).await) }
        })
    }));
    let api_task = tokio::spawn(crate::listen::serve(api_listener, tls, "api", move |connection| {
        let api = api.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(connection);
            tower::ServiceExt::oneshot(api.clone(), request.map(axum::body::Body::new))
        })
    }));

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        result = s3_task => anyhow::bail!("the S3 listener stopped: {result:?}"),
        result = api_task => anyhow::bail!("the API listener stopped: {result:?}"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// First start: the org, an org policy letting `user/admin` do everything, and
/// an API token for `user/admin` in `<data-dir>/admin-token` (mode 0600),
/// printed once. Later starts reuse them.
async fn bootstrap(config: &Config, store: &Store, credentials: &Credentials) -> anyhow::Result<()> {
    let created = store.ensure_org(&config.org_id).await?;
    if created {
        let policy = OrgPolicy {
            version: "v1alpha1".into(),
            name: "admin".into(),
            statements: vec![OrgStatement {
                name: "admin-all".into(),
                effect: Effect::Allow,
                actions: vec!["*".into()],
                resources: vec!["*".into()],
                principals: vec!["user/admin".into()],
                conditions: Default::default(),
            }],
        };
        store.put_policy(&config.org_id, &policy.name, &serde_json::to_string(&policy)?).await?;
        tracing::info!(org = %config.org_id, "created organization with an admin policy");
    }

    let token_path = config.data_dir.join("admin-token");
    if !token_path.exists() {
        let (_, token) = credentials.mint_api_token(&config.org_id, "admin").await.map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&token_path)
            .with_context(|| format!("cannot write {}", token_path.display()))?;
        file.write_all(token.expose().as_bytes())?;
        file.sync_all()?;
        // Printed once, on purpose: this is how a new operator learns it.
        println!("admin API token for user/admin (also in {}): {}", token_path.display(), token.expose());
    }
    Ok(())
}

fn init_logging(json: bool) {
    // s3s logs whole requests at debug level, Authorization included, so it is
    // silenced unless RUST_LOG names it explicitly.
    let requested = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter = tracing_subscriber::EnvFilter::try_new(&requested)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    if requested.is_empty() {
        filter = tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn");
    }
    if !requested.contains("s3s") {
        filter = filter.add_directive("s3s=off".parse().unwrap_or_default());
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
