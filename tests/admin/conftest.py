import pytest

from backend.store.sites import create_site

TINY = "layers=16,n_epochs=1,batch_size=16,n_sample=32"


@pytest.fixture
def site(engine):
    return create_site(engine, "shop", ["https://shop.example"])
