# hipaa_audit -- PGXS build.  The control file is the one version source.
EXTENSION = hipaa_audit
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/p" $(EXTENSION).control)

MODULE_big = hipaa_audit
# src/ is layered (docs/architecture.md): base/ <- store/ <- core/ <- api/
# and enforce/; test/check_layers.sh fails on a call against the layers.
OBJS = \
	src/base/crypto.o \
	src/base/refuse.o \
	src/base/util.o \
	src/base/sqlrun.o \
	src/store/scan.o \
	src/store/registry.o \
	src/store/records.o \
	src/core/encoding.o \
	src/core/chain.o \
	src/core/linkcheck.o \
	src/core/retention.o \
	src/core/reach.o \
	src/core/guards.o \
	src/core/signer.o \
	src/core/note.o \
	src/core/partition.o \
	src/core/merkle.o \
	src/api/protect.o \
	src/api/policy.o \
	src/api/checkpoint.o \
	src/api/verify.o \
	src/api/purge.o \
	src/api/notecheck.o \
	src/api/proof.o \
	src/enforce/backstop.o \
	src/enforce/hooks.o \
	src/enforce/guard.o \
	src/enforce/stamp.o \
	src/hipaa_audit.o

PG_CPPFLAGS = -I$(srcdir)/src -DHIPAA_AUDIT_VERSION=\"$(EXTVERSION)\"
SHLIB_LINK = -lcrypto

# Released install scripts never change.  The current version's script is
# the first release's script followed by every upgrade script in order, so a
# fresh install and an upgraded one run the same statements; new work goes
# into the newest upgrade script.
BASE_SCRIPT = sql/$(EXTENSION)--0.1.0.sql
UPGRADE_SCRIPTS = \
	sql/$(EXTENSION)--0.1.0--0.2.0.sql \
	sql/$(EXTENSION)--0.2.0--0.3.0.sql
# Released versions after the first are installable too: each install
# script is the first one followed by the upgrade scripts up to it.
RELEASED_SCRIPTS = sql/$(EXTENSION)--0.2.0.sql
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(RELEASED_SCRIPTS)
DATA = $(BASE_SCRIPT) $(UPGRADE_SCRIPTS)
EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql $(RELEASED_SCRIPTS) $(AGENT) $(CHECKER) tools/hipaa_audit_witness

# The signing agent (agent/hipaa_audit_signer.c), a program of its own that
# holds the signing key outside the server's account.  PGXS builds either a
# module or a program, so it has its own rules below.
AGENT = agent/hipaa_audit_signer

# The offline checker of proofs (tools/hipaa_audit_verify.c), for auditors:
# a plain OpenSSL program, installed next to the agent.
CHECKER = tools/hipaa_audit_verify

# The witness client (tools/hipaa_audit_witness.c): libpq and libcurl; built
# when libcurl's headers are there (Debian: libcurl4-openssl-dev).
HAVE_CURL := $(shell printf '\043include <curl/curl.h>\n' | $(CC) -E - >/dev/null 2>&1 && echo yes)
ifeq ($(HAVE_CURL),yes)
WITNESS = tools/hipaa_audit_witness
endif

# pg_regress reads sql/<test>.sql and expected/<test>.out from the top level.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/[0-9][0-9]_*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object depends on the shared header (PGXS tracks no header
# dependencies by itself; a stale object would disagree on struct layouts).
$(OBJS): src/hipaa_audit.h src/compat.h

all: $(AGENT) $(CHECKER) $(WITNESS)

# Not the server's headers: the agent is a plain OpenSSL program.
$(AGENT): agent/hipaa_audit_signer.c
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) -lcrypto

$(CHECKER): tools/hipaa_audit_verify.c
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) -lcrypto

PG_INCLUDEDIR := $(shell $(PG_CONFIG) --includedir)
PG_LIBDIR := $(shell $(PG_CONFIG) --libdir)
tools/hipaa_audit_witness: tools/hipaa_audit_witness.c
	$(CC) $(CFLAGS) -I'$(PG_INCLUDEDIR)' -o $@ $< -L'$(PG_LIBDIR)' -Wl,-rpath,'$(PG_LIBDIR)' $(LDFLAGS) -lpq -lcurl

install: install-agent
uninstall: uninstall-agent
.PHONY: install-agent uninstall-agent
install-agent: $(AGENT) $(CHECKER) $(WITNESS)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(AGENT) $(CHECKER) $(WITNESS) '$(DESTDIR)$(bindir)/'
uninstall-agent:
	rm -f '$(DESTDIR)$(bindir)/$(notdir $(AGENT))' '$(DESTDIR)$(bindir)/$(notdir $(CHECKER))' \
		'$(DESTDIR)$(bindir)/hipaa_audit_witness'

sql/$(EXTENSION)--$(EXTVERSION).sql: $(BASE_SCRIPT) $(UPGRADE_SCRIPTS) $(EXTENSION).control
	cat $(BASE_SCRIPT) $(UPGRADE_SCRIPTS) > $@

sql/$(EXTENSION)--0.2.0.sql: $(BASE_SCRIPT) sql/$(EXTENSION)--0.1.0--0.2.0.sql
	cat $^ > $@

# pgTAP and TAP suites need a running server / PostgreSQL::Test::Cluster;
# test/run.sh runs everything, these targets are for working on one suite.
PGXS_DIR = $(shell $(PG_CONFIG) --pkglibdir)/pgxs
.PHONY: tapcheck pgtapcheck
tapcheck:
	TESTDIR='$(CURDIR)' PG_REGRESS='$(PGXS_DIR)/src/test/regress/pg_regress' \
	PATH="$(bindir):$$PATH" prove -I '$(PGXS_DIR)/src/test/perl' -I test/t test/t/*.pl
pgtapcheck:
	pg_prove -d $${PGDATABASE:-pgtap_test} test/pgtap/*.sql

.PHONY: version
version:
	@echo $(EXTVERSION)
