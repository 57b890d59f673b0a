"""``nhiscan serve``: the nightly daemon.

APScheduler 3.x (the stable line) with its job store in the same database as the
findings. The schedule coalesces missed runs and has no misfire grace limit, so a
machine that was down runs exactly one catch-up sweep when it comes back.

Two kinds of lease keep two processes from doing the same work:

- the **scheduler** lease: one ``nhiscan serve`` per database schedules; a second
  one stands by and takes over if the first stops renewing (APScheduler's docs:
  job stores must never be shared between running schedulers);
- the **sweep** lease (:func:`scanner.sweep.run_sweep`): one sweep at a time, also
  against a manual ``nhiscan scan``.

SIGTERM or SIGINT stops the scheduler and waits for the sweep in flight: it
either commits its single transaction or leaves nothing written.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from scanner.config import ConfigError, cron_trigger, load_config
from scanner.store import Store
from scanner.sweep import SweepBusy, acquire_or_take_over, lease_holder_id, run_sweep

log = logging.getLogger("nhiscan.daemon")

JOB_ID = "nhiscan-sweep"
SCHEDULER_LEASE = "scheduler"
LEASE_TTL = timedelta(seconds=30)
RENEW_EVERY = 10.0  # seconds; well inside the TTL


def scheduled_sweep(config_path: str) -> None:
    """The job. It reloads the config each time, so edits take effect at the next sweep."""
    try:
        config = load_config(config_path)
        outcome = run_sweep(config)
    except SweepBusy as busy:
        log.warning("scheduled sweep skipped: %s", busy)
        return
    except ConfigError as err:
        log.error("scheduled sweep skipped, the config is invalid:\n%s", err)
        return
    log.info("sweep %s complete: %s", outcome.sweep_id, outcome.summary.get("changes", {}))


class Daemon:
    def __init__(self, config_path: Path):
        self.config_path = Path(config_path).resolve()
        self.config = load_config(self.config_path)
        self.store = Store(self.config.store_url)
        self.holder = lease_holder_id()
        self.stopping = threading.Event()
        self.scheduler: BackgroundScheduler | None = None

    def stop(self, *_args) -> None:
        self.stopping.set()

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        announced = False
        while not self.stopping.is_set():
            if acquire_or_take_over(self.store, SCHEDULER_LEASE, self.holder, LEASE_TTL):
                break
            if not announced:
                log.warning("another nhiscan serve (%s) schedules sweeps for this database; standing by",
                            self.store.lease_holder(SCHEDULER_LEASE))
                announced = True
            self.stopping.wait(RENEW_EVERY / 2)
        if self.stopping.is_set():
            return
        try:
            self._schedule()
            while not self.stopping.wait(RENEW_EVERY):
                if not self.store.acquire_lease(SCHEDULER_LEASE, self.holder, LEASE_TTL):
                    log.error("lost the scheduler lease to %s; stopping", self.store.lease_holder(SCHEDULER_LEASE))
                    break
        finally:
            if self.scheduler is not None:
                log.info("stopping: waiting for the sweep in flight, if any")
                self.scheduler.shutdown(wait=True)
            self.store.release_lease(SCHEDULER_LEASE, self.holder)

    def _schedule(self) -> None:
        trigger = cron_trigger(self.config.schedule.cron, self.config.schedule.timezone)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self.config.store_url, tablename="apscheduler_jobs")},
            # One catch-up run after downtime, never two sweeps of the same schedule at once.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=self.config.schedule.timezone,
        )
        self.scheduler.start(paused=True)
        job = self.scheduler.get_job(JOB_ID)
        args = [str(self.config_path)]
        if job is None:
            self.scheduler.add_job("scanner.daemon:scheduled_sweep", trigger, args=args, id=JOB_ID, name="nhiscan sweep")
        elif str(job.trigger) != str(trigger) or list(job.args) != args:
            # Keep the stored job (and so its missed run) unless the schedule itself changed.
            self.scheduler.modify_job(JOB_ID, args=args)
            self.scheduler.reschedule_job(JOB_ID, trigger=trigger)
        self.scheduler.resume()
        nxt = self.scheduler.get_job(JOB_ID).next_run_time
        log.info("scheduling sweeps (%s %s); next run %s", self.config.schedule.cron, self.config.schedule.timezone, nxt)


def serve(config_path: Path) -> None:
    Daemon(config_path).run()
