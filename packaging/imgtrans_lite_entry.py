"""Entry point of the lite bundle (packaging/imgtrans-lite.spec): the ``imgtrans-lite`` command
(``convert`` and ``models``; onnxruntime, no torch, no desktop app)."""

if __name__ == "__main__":
    from imgtrans.lite import main

    raise SystemExit(main())
