// The STAR plugin's editor: one row per parameter, the texture source with a file picker, the
// worker-thread switch, and a status panel that says what the processor is doing (model,
// latency, a refused host rate, the texture, late worker blocks).
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_gui_basics/juce_gui_basics.h>

#include <memory>
#include <vector>

class StarProcessor;

class StarEditor : public juce::AudioProcessorEditor, private juce::Timer {
 public:
  explicit StarEditor(StarProcessor& owner);
  ~StarEditor() override;
  void paint(juce::Graphics& g) override;
  void resized() override;

 private:
  using Attachment = juce::AudioProcessorValueTreeState::SliderAttachment;
  struct SliderRow {
    std::unique_ptr<juce::Label> label;
    std::unique_ptr<juce::Slider> slider;
    std::unique_ptr<Attachment> attachment;
  };
  void timerCallback() override;
  void choose_texture_file();

  StarProcessor& processor_;
  std::vector<SliderRow> rows_;
  juce::Label texture_label_, status_;
  juce::ComboBox texture_source_;
  juce::TextButton load_texture_{"Load texture..."};
  juce::ToggleButton worker_{"Worker thread (for small host buffers; adds latency)"};
  std::unique_ptr<juce::AudioProcessorValueTreeState::ComboBoxAttachment> texture_attachment_;
  std::unique_ptr<juce::AudioProcessorValueTreeState::ButtonAttachment> worker_attachment_;
  std::unique_ptr<juce::FileChooser> chooser_;

  JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(StarEditor)
};
