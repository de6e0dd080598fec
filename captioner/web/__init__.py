"""The HTTP side: the aiohttp server and its endpoints, the operator dashboard and the OBS overlay."""
