-- defer_job --
-- Queue a job inside the caller's transaction, so it exists exactly when the rows it acts on do.
SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
    %(queue)s, %(task)s, 0, %(lock)s, %(queueing_lock)s, %(args)s::jsonb, %(scheduled_at)s
)::procrastinate_job_to_defer_v1]) AS job_ids
