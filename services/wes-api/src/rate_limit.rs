//! Rate limits per caller: by client address on every route (before anything else runs), and by
//! authenticated person on every protected route (`auth::authorize`). Token buckets (GCRA,
//! `governor`), one per key, refilled at `per_second` up to `burst`; the key sets are pruned of
//! full buckets every minute, so memory follows the callers seen recently, bounded by
//! `max_tracked` keys: when a table is full even after pruning, requests get 429 until callers
//! go idle (a flood of distinct addresses degrades to refusals, never to unbounded memory).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use spe_core::config::RateLimitConfig;

use crate::error::ApiError;

pub struct RateLimits {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_caller: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    max_tracked: usize,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("addresses", &self.by_address.len())
            .field("callers", &self.by_caller.len())
            .finish()
    }
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Quota::per_second(rate).allow_burst(burst)
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> RateLimits {
        RateLimits {
            by_address: RateLimiter::keyed(quota(
                config.per_address_per_second,
                config.per_address_burst,
            )),
            by_caller: RateLimiter::keyed(quota(
                config.per_caller_per_second,
                config.per_caller_burst,
            )),
            clock: DefaultClock::default(),
            max_tracked: config.max_tracked,
        }
    }

    /// A request from `address`: `Err` (429) when its bucket is empty.
    pub fn check_address(&self, address: IpAddr) -> Result<(), ApiError> {
        if self.by_address.len() >= self.max_tracked {
            self.by_address.retain_recent();
            if self.by_address.len() >= self.max_tracked {
                return Err(ApiError::too_many(
                    "too many clients at once; try again shortly",
                    60,
                ));
            }
        }
        self.by_address.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::too_many(
                format!(
                    "rate limit: too many requests from your address; try again in {} ms",
                    wait.as_millis().max(1)
                ),
                wait.as_secs() + 1,
            )
        })
    }

    /// A request of the person with this key (`<issuer> <sub>`).
    pub fn check_caller(&self, key: &str) -> Result<(), ApiError> {
        if self.by_caller.len() >= self.max_tracked {
            self.by_caller.retain_recent();
            if self.by_caller.len() >= self.max_tracked {
                return Err(ApiError::too_many(
                    "too many callers at once; try again shortly",
                    60,
                ));
            }
        }
        self.by_caller
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                ApiError::too_many(
                    format!(
                        "rate limit: too many requests from you; try again in {} ms",
                        wait.as_millis().max(1)
                    ),
                    wait.as_secs() + 1,
                )
            })
    }

    /// Forgets callers whose buckets are full again (nothing to remember).
    pub fn prune(&self) {
        self.by_address.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_caller.retain_recent();
        self.by_caller.shrink_to_fit();
    }

    /// Prunes every minute, until the process ends.
    pub async fn prune_forever(limits: std::sync::Arc<RateLimits>) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.prune();
        }
    }
}
