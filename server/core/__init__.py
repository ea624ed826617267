"""The request plumbing that api/ and web/ share: the database session of a request and its one
commit, who is calling, errors as problem+json or as a page, rate limits, request ids in the
logs, metrics. It imports the domain and Flask, never api/ or web/."""
