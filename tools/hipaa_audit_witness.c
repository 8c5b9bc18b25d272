/*-------------------------------------------------------------------------
 *
 * hipaa_audit_witness.c
 *	  Submit a table's latest checkpoint to a C2SP tlog-witness and store
 *	  the co-signature it returns (docs/merkle.md, "Witnessing").
 *
 *	  hipaa_audit_witness --dbname CONNINFO --table TABLE --url URL
 *	                      --witness NAME [--timeout SECONDS]
 *
 * The request comes from hipaa_audit.witness_request() (the old size the
 * witness last co-signed, the consistency proof from it, the checkpoint);
 * it is POSTed to URL/add-checkpoint.  On 200 each returned signature line
 * of the witness NAME is stored with hipaa_audit.cosign(), which checks it
 * against the witness's key registered with hipaa_audit.trust_key(): a
 * co-signature that does not verify is never stored.  On 409 the request
 * is made once more from the size the witness reports.  422 (the witness
 * refuses the consistency proof) and every other answer are reported.
 *
 * Exit status: 0 co-signed and stored; 1 the witness refused, or its
 * answer could not be stored; 2 usage, connection or database error.
 * Runs as a member of hipaa_audit_admin.
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#define MAX_ANSWER	65536

typedef struct Answer
{
	char		data[MAX_ANSWER + 1];
	size_t		len;
	bool		overflow;
} Answer;

static const char *prog = "hipaa_audit_witness";

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	Answer	   *a = (Answer *) arg;
	size_t		n = size * nmemb;

	if (a->len + n > MAX_ANSWER)
	{
		a->overflow = true;
		return 0;
	}
	memcpy(a->data + a->len, ptr, n);
	a->len += n;
	a->data[a->len] = '\0';
	return n;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: %s --dbname CONNINFO --table TABLE --url URL --witness NAME [--timeout SECONDS]\n"
			"Submits TABLE's latest hipaa_audit checkpoint to the tlog-witness at URL\n"
			"(POST URL/add-checkpoint) and stores the co-signature of witness key NAME.\n"
			"Exit status: 0 co-signed, 1 refused, 2 usage or connection error.\n", prog);
}

/* witness_request(): checkpoint id, old size, body; false on error. */
static bool
request_body(PGconn *conn, const char *table, const char *witness, const char *old,
			 char **id, char **old_used, char **body)
{
	const char *params[3] = {table, witness, old};
	PGresult   *r = PQexecParams(conn,
								 "SELECT checkpoint_id, old_size_used, body "
								 "FROM hipaa_audit.witness_request($1::pg_catalog.regclass, $2, $3::pg_catalog.int8)",
								 3, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
	{
		fprintf(stderr, "%s: %s", prog, PQerrorMessage(conn));
		PQclear(r);
		return false;
	}
	*id = strdup(PQgetvalue(r, 0, 0));
	*old_used = strdup(PQgetvalue(r, 0, 1));
	*body = strdup(PQgetvalue(r, 0, 2));
	PQclear(r);
	return true;
}

/* POST the body; the HTTP status (0 when there was no answer). */
static long
post(const char *url, const char *body, long timeout, Answer *a, char *ctype, size_t ctlen)
{
	CURL	   *c = curl_easy_init();
	struct curl_slist *hdr = NULL;
	CURLcode	rc;
	long		status = 0;
	char	   *endpoint;
	size_t		ulen = strlen(url);
	char	   *ct = NULL;

	a->len = 0;
	a->data[0] = '\0';
	a->overflow = false;
	ctype[0] = '\0';
	if (c == NULL)
		return 0;
	endpoint = malloc(ulen + sizeof("/add-checkpoint"));
	strcpy(endpoint, url);
	if (ulen > 0 && endpoint[ulen - 1] == '/')
		endpoint[ulen - 1] = '\0';
	strcat(endpoint, "/add-checkpoint");
	hdr = curl_slist_append(hdr, "Content-Type: text/plain; charset=utf-8");
	curl_easy_setopt(c, CURLOPT_URL, endpoint);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		fprintf(stderr, "%s: POST %s failed: %s\n", prog, endpoint, curl_easy_strerror(rc));
	else
	{
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
		{
			strncpy(ctype, ct, ctlen - 1);
			ctype[ctlen - 1] = '\0';
		}
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	free(endpoint);
	return status;
}

/* Store each signature line of the witness; the number stored, -1 on error. */
static int
store_cosignatures(PGconn *conn, const char *id, const char *witness, char *answer)
{
	int			stored = 0;
	char		prefix[512];

	snprintf(prefix, sizeof(prefix), "\xe2\x80\x94 %s ", witness);
	for (char *line = answer; *line;)
	{
		char	   *eol = strchr(line, '\n');
		PGresult   *r;
		const char *params[2];

		if (eol == NULL)
		{
			fprintf(stderr, "%s: the witness's answer does not end with a newline\n", prog);
			return -1;
		}
		*eol = '\0';
		if (strncmp(line, prefix, strlen(prefix)) == 0)
		{
			params[0] = id;
			params[1] = line;
			r = PQexecParams(conn, "SELECT hipaa_audit.cosign($1::pg_catalog.int8, $2)",
							 2, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(r) != PGRES_TUPLES_OK)
			{
				fprintf(stderr, "%s: the co-signature could not be stored: %s", prog, PQerrorMessage(conn));
				PQclear(r);
				return -1;
			}
			PQclear(r);
			stored++;
		}
		else if (strncmp(line, "\xe2\x80\x94 ", 4) != 0)
		{
			fprintf(stderr, "%s: the witness's answer has a line that is not a signature line\n", prog);
			return -1;
		}
		line = eol + 1;
	}
	return stored;
}

int
main(int argc, char **argv)
{
	const char *dbname = NULL;
	const char *table = NULL;
	const char *url = NULL;
	const char *witness = NULL;
	long		timeout = 30;
	PGconn	   *conn;
	Answer	   *a = malloc(sizeof(Answer));
	char		ctype[128];
	char	   *old = NULL;
	int			rc = 1;

	for (int i = 1; i < argc; i++)
	{
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v != NULL && strcmp(argv[i], "--dbname") == 0)
			dbname = argv[++i];
		else if (v != NULL && strcmp(argv[i], "--table") == 0)
			table = argv[++i];
		else if (v != NULL && strcmp(argv[i], "--url") == 0)
			url = argv[++i];
		else if (v != NULL && strcmp(argv[i], "--witness") == 0)
			witness = argv[++i];
		else if (v != NULL && strcmp(argv[i], "--timeout") == 0)
		{
			char	   *end;

			timeout = strtol(argv[++i], &end, 10);
			if (*end != '\0' || timeout < 1 || timeout > 3600)
			{
				fprintf(stderr, "%s: --timeout must be 1 to 3600 seconds\n", prog);
				return 2;
			}
		}
		else
		{
			usage();
			return 2;
		}
	}
	if (table == NULL || url == NULL || witness == NULL || a == NULL)
	{
		usage();
		return 2;
	}
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
	{
		fprintf(stderr, "%s: the witness URL must start with http:// or https://\n", prog);
		return 2;
	}
	conn = PQconnectdb(dbname ? dbname : "");
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: %s", prog, PQerrorMessage(conn));
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	/* At most twice: a 409 names the size the witness holds. */
	for (int attempt = 0; attempt < 2; attempt++)
	{
		char	   *id;
		char	   *old_used;
		char	   *body;
		long		status;

		if (!request_body(conn, table, witness, old, &id, &old_used, &body))
		{
			/* After a 409, the database cannot prove from the witness's size. */
			rc = attempt == 0 ? 2 : 1;
			break;
		}
		status = post(url, body, timeout, a, ctype, sizeof(ctype));
		if (a->overflow)
		{
			fprintf(stderr, "%s: the witness's answer is longer than %d bytes\n", prog, MAX_ANSWER);
			rc = 1;
			break;
		}
		if (status == 200)
		{
			int			n = store_cosignatures(conn, id, witness, a->data);

			if (n > 0)
			{
				printf("checkpoint %s co-signed by %s (from tree size %s) and stored\n", id, witness, old_used);
				rc = 0;
			}
			else
			{
				if (n == 0)
					fprintf(stderr, "%s: the witness answered 200 without a signature by %s\n", prog, witness);
				rc = 1;
			}
			break;
		}
		if (status == 409)
		{
			char	   *end;
			long long	size = strtoll(a->data, &end, 10);

			if (end == a->data || *end != '\n' || size < 0 || strstr(ctype, "text/x.tlog.size") == NULL)
			{
				fprintf(stderr, "%s: the witness answered 409 without a tree size\n", prog);
				rc = 1;
				break;
			}
			if (attempt == 1 || old_used == NULL || strtoll(old_used, NULL, 10) == size)
			{
				fprintf(stderr, "%s: REFUSED: the witness holds a tree of %lld leaves that this table's checkpoint does not extend (409): "
						"its history differs from what the witness co-signed\n", prog, size);
				rc = 1;
				break;
			}
			fprintf(stderr, "%s: the witness last co-signed a tree of %lld leaves (409); asking again from there\n",
					prog, size);
			free(old);
			old = malloc(32);
			snprintf(old, 32, "%lld", size);
			continue;
		}
		if (status == 422)
			fprintf(stderr, "%s: REFUSED: the witness rejects the consistency proof from %s leaves (422): "
					"this table's tree does not extend the one it co-signed (history rewritten?)\n", prog, old_used);
		else if (status == 404)
			fprintf(stderr, "%s: REFUSED: the witness does not know this log's origin (404): register it with the witness\n", prog);
		else if (status == 403)
			fprintf(stderr, "%s: REFUSED: the witness does not accept this log's signature (403): give it the verifier key\n", prog);
		else if (status == 400)
			fprintf(stderr, "%s: REFUSED: the witness says the request is malformed (400): %.200s\n", prog, a->data);
		else if (status != 0)
			fprintf(stderr, "%s: the witness answered HTTP %ld: %.200s\n", prog, status, a->data);
		rc = status == 0 ? 2 : 1;
		break;
	}
	PQfinish(conn);
	curl_global_cleanup();
	return rc;
}
