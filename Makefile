# The README's two commands are `make demo` and `make test`; the rest are shortcuts.
.PHONY: demo test lint docs bootstrap clean

demo:
	scripts/demo.sh

test:
	scripts/test.sh

lint: bootstrap
	.venv-tox/bin/tox -e lint

docs: bootstrap
	.venv-tox/bin/tox -e docs

bootstrap:
	scripts/bootstrap.sh

clean:
	rm -rf .tox .venv-tox .artifacts .demo docs/_build docs/reference/config/gen build *.egg-info
