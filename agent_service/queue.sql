-- defer_job --
-- Queue a job inside the caller's transaction, so it exists exactly when the rows it acts on do.
SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
    %(queue)s, %(task)s, 0, %(lock)s, %(queueing_lock)s, %(args)s::jsonb, %(scheduled_at)s
)::procrastinate_job_to_defer_v1]) AS job_ids

-- hold_worker_lock --
-- Taken by a live worker on a connection of its own for its whole life: the server frees it the moment the process dies.
SELECT pg_advisory_lock(%(namespace)s::integer, %(worker_id)s::integer)

-- dead_workers --
-- Registered workers whose liveness lock nobody holds (their process is gone), past the few seconds a new one needs to take it.
SELECT w.id AS worker_id
FROM procrastinate_workers w
WHERE w.last_heartbeat < now() - make_interval(secs => %(settle_seconds)s)
  AND NOT EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                    AND l.classid = %(namespace)s::integer::oid AND l.objid = w.id::oid)

-- job_taken_lately --
-- Whether the latest job under this queueing lock is marked succeeded yet was taken by a worker (started) within the given seconds: a superseded execution finishing the job another worker took over marks it so while that one still carries the run out.
SELECT coalesce((SELECT j.status = 'succeeded'
                        AND EXISTS (SELECT 1 FROM procrastinate_events e
                                    WHERE e.job_id = j.id AND e.type = 'started'
                                      AND e.at > now() - make_interval(secs => %(within_seconds)s))
                 FROM procrastinate_jobs j WHERE j.queueing_lock = %(lock)s ORDER BY j.id DESC LIMIT 1),
                false) AS taken_lately
